-- $1 table oid, $2 names of our own triggers: the application's triggers (not internal ones
-- such as foreign key checks), their CREATE TRIGGER text and enabled state (O, D, R, A), and
-- whether it is a row trigger with a transition table (which a partitioned table cannot have).
select t.tgname as name, pg_get_triggerdef(t.oid) as definition, t.tgenabled::text as enabled,
       (t.tgtype & 1) = 1 and (t.tgoldtable is not null or t.tgnewtable is not null) as row_transition
from pg_trigger t
where t.tgrelid = $1::oid and not t.tgisinternal and t.tgname <> all($2::text[])
order by t.tgname
