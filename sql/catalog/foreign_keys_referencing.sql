select c.conname, n.nspname as ref_schema, r.relname as ref_table
from pg_constraint c join pg_class r on r.oid = c.confrelid join pg_namespace n on n.oid = r.relnamespace
where c.conrelid = $1::regclass and c.contype = 'f' and c.conparentid = 0
order by 1
