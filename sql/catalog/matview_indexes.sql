-- $1 materialized view oid: its indexes, each with the text after "... ON <schema>.<view> USING " of its definition and its tablespace (null: the default).
select i.relname as name, x.indisunique as is_unique, ts.spcname as tablespace,
       substr(pg_get_indexdef(x.indexrelid),
              length('CREATE ' || case when x.indisunique then 'UNIQUE ' else '' end || 'INDEX '
                     || quote_ident(i.relname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(t.relname)
                     || ' USING ') + 1) as using_clause
from pg_index x
join pg_class i on i.oid = x.indexrelid
join pg_class t on t.oid = x.indrelid
join pg_namespace n on n.oid = t.relnamespace
left join pg_tablespace ts on ts.oid = i.reltablespace
where x.indrelid = $1::oid
order by i.relname
