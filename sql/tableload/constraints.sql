-- $1 table oid: what limits the values a generated write may take, each with its columns.
-- kind: p primary key, u other unique index, f foreign key out of the table (ref_* = referenced
-- table and columns), r foreign key into the table (columns = ours it references), c check.
select case when x.indisprimary then 'p' else 'u' end as kind, c.relname::text as name,
       array(select a.attname::text from unnest(x.indkey::int2[]) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.n order by k.i) as columns,
       (0 = any(x.indkey::int2[]) or x.indexprs is not null) as has_expressions,
       null::text as ref_table, null::text[] as ref_columns
from pg_index x join pg_class c on c.oid = x.indexrelid
where x.indrelid = $1::oid and x.indisunique
union all
select 'f', con.conname::text,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
       false, con.confrelid::regclass::text,
       array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i)
from pg_constraint con
where con.contype = 'f' and con.conrelid = $1::oid and con.conparentid = 0
union all
select 'r', con.conname::text,
       array(select a.attname::text from unnest(con.confkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.i),
       false, con.conrelid::regclass::text,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i)
from pg_constraint con
where con.contype = 'f' and con.confrelid = $1::oid and con.conparentid = 0
union all
select 'c', con.conname::text,
       array(select a.attname::text from unnest(con.conkey) with ordinality k(n, i)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i),
       false, null, null
from pg_constraint con
where con.contype = 'c' and con.conrelid = $1::oid
