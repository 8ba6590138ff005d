-- $1 schema, $2 table: the relation, its size estimate and comment.
select c.oid::int as oid, c.relkind::text as relkind, c.reltuples::bigint as reltuples,
       obj_description(c.oid, 'pg_class') as comment, c.relacl::text[] as acl
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relname = $2
