-- $1 qualified relation name: its total size in bytes (heap and indexes), 0 when it does not exist.
select coalesce(pg_total_relation_size(to_regclass($1::text)), 0)::bigint as b
