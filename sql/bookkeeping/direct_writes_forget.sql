delete from partition_switchover.direct_writes where table_oid = to_regclass($1::text) and id <= $2::bigint
