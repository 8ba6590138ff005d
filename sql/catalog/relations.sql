-- $1 schema, $2 names: which of these relations exist, and their kind.
select c.relname as name, c.relkind::text as relkind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = any($2::text[])
