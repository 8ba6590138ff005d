-- $1 a relation's qualified name (text; none: no rows): the foreign keys of other tables that
-- reference it now (on a partitioned referencing table, the parent's), with whether each is validated.
select c.conname as name, n.nspname as schema, r.relname as table, c.convalidated as validated
from pg_constraint c
join pg_class r on r.oid = c.conrelid join pg_namespace n on n.oid = r.relnamespace
where c.confrelid = to_regclass($1::text) and c.contype = 'f' and c.conrelid <> c.confrelid and c.conparentid = 0
order by n.nspname, r.relname, c.conname
