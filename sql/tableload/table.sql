-- $1 schema, $2 table: the relation the load generator writes to (plain, or partitioned after cutover).
select c.oid::text as oid, c.relkind::text as relkind
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2
