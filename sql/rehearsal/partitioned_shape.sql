-- $1 qualified table name: its relkind, number of partitions, number of indexes and primary key columns in key order; no row when it does not exist.
select c.relkind::text as kind,
       (select count(*) from pg_inherits i where i.inhparent = c.oid)::int as partitions,
       (select count(*) from pg_index x where x.indrelid = c.oid)::int as indexes,
       (select array_agg(a.attname::text order by k.ord) from pg_constraint p
          cross join unnest(p.conkey) with ordinality k(attnum, ord)
          join pg_attribute a on a.attrelid = p.conrelid and a.attnum = k.attnum
         where p.conrelid = c.oid and p.contype = 'p') as pk
  from pg_class c where c.oid = to_regclass($1::text)
