-- $1 table oid: its NOT VALID CHECK and foreign key constraints (rows from before they were
-- added may violate them), with what a violation query needs: the CHECK's expression, the
-- foreign key's columns, referenced table and columns, and MATCH type (f full, s simple).
select c.conname as name, c.contype::text as type,
       case when c.contype = 'c' then pg_get_expr(c.conbin, c.conrelid) end as check_expr,
       (select array_agg(a.attname::text order by k.i) from unnest(c.conkey) with ordinality k(n, i)
          join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n) as columns,
       rn.nspname as ref_schema, rc.relname as ref_table,
       (select array_agg(a.attname::text order by k.i) from unnest(c.confkey) with ordinality k(n, i)
          join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n) as ref_columns,
       c.confmatchtype::text as match
from pg_constraint c
left join pg_class rc on rc.oid = c.confrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where c.conrelid = $1::oid and not c.convalidated and c.contype in ('c', 'f')
order by c.conname
