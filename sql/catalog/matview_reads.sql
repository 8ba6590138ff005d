-- $1 a materialized view's qualified name: the oids of the relations its rule reads.
select coalesce(array_agg(distinct d.refobjid::bigint), '{}') as oids
from pg_depend d join pg_rewrite r on r.oid = d.objid
where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
  and r.ev_class = to_regclass($1::text) and d.refobjid <> to_regclass($1::text)
