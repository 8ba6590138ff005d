-- $1 table oid: views and materialized views whose rules read the table. pg_get_viewdef
-- qualifies names by the caller's search_path: preflight reads it with search_path = pg_catalog,
-- so the text names every relation with its schema.
select distinct v.oid::bigint as oid, n.nspname as schema, v.relname as name, v.relkind::text as relkind,
       pg_get_viewdef(v.oid) as definition, coalesce(v.reloptions, '{}')::text[] as options
from pg_depend d
join pg_rewrite r on r.oid = d.objid
join pg_class v on v.oid = r.ev_class
join pg_namespace n on n.oid = v.relnamespace
where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
  and d.refobjid = $1::oid and v.oid <> $1::oid
order by 1
