-- $1 table oid, $2 names of our own triggers: the application's triggers (not internal ones
-- such as foreign key checks), their CREATE TRIGGER text and enabled state (O, D, R, A).
select t.tgname as name, pg_get_triggerdef(t.oid) as definition, t.tgenabled::text as enabled
from pg_trigger t
where t.tgrelid = $1::oid and not t.tgisinternal and t.tgname <> all($2::text[])
order by t.tgname
