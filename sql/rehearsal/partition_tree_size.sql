-- $1 qualified table name: the total size in bytes of the table and all its partitions.
select coalesce(sum(pg_total_relation_size(relid)), 0)::bigint as b from pg_partition_tree(to_regclass($1::text))
