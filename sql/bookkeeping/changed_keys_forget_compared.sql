-- The entries a comparison compared, in its snapshot (repeatable read: rows logged since are not
-- seen, so not deleted): table $1, up to log position $2.
delete from partition_switchover.changed_keys where table_oid = to_regclass($1::text) and seq <= $2::bigint
