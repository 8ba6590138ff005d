-- $1 schema, $2 table names: per table whether it exists, its total size (heap and indexes) and its heap size, in bytes.
select t as table, to_regclass(format('%I.%I', $1::text, t)) is not null as exists,
       coalesce(pg_total_relation_size(to_regclass(format('%I.%I', $1::text, t))), 0)::bigint as total,
       coalesce(pg_table_size(to_regclass(format('%I.%I', $1::text, t))), 0)::bigint as heap
  from unnest($2::text[]) t
