-- $1 schema, $2 table, $3 trigger names: our triggers on the table and whether they are enabled.
select t.tgname as name, t.tgenabled::text as enabled
from pg_trigger t
join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2 and t.tgname = any($3::text[]) and not t.tgisinternal
