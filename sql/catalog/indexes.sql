-- $1 table oid: every index with its columns, the constraint it backs, and the text after
-- "... ON <table> USING " of its definition (so it can be re-created on another table).
select i.relname as name, x.indisprimary as is_primary, x.indisunique as is_unique,
       con.contype::text as constraint_type,
       case when con.oid is not null then pg_get_constraintdef(con.oid) end as constraint_def,
       array(select a.attname from unnest(x.indkey) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.attnum
             order by k.ord)::text[] as columns,
       x.indexprs is not null as has_expressions,
       substr(pg_get_indexdef(x.indexrelid),
              length('CREATE ' || case when x.indisunique then 'UNIQUE ' else '' end || 'INDEX '
                     || quote_ident(i.relname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname)
                     || ' USING ') + 1) as using_clause,
       pg_get_indexdef(x.indexrelid) as definition
from pg_index x
join pg_class i on i.oid = x.indexrelid
join pg_class t on t.oid = x.indrelid
join pg_namespace n on n.oid = t.relnamespace
left join pg_constraint con on con.conindid = x.indexrelid and con.conrelid = x.indrelid
where x.indrelid = $1::oid
order by x.indisprimary desc, i.relname
