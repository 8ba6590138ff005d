-- the restore log of table $1 (regclass text): its last position (upto, text, 0 when empty) and its entries (n)
select coalesce(max(seq), 0)::text as upto, count(*)::int as n from partition_switchover.restore_keys where table_oid = $1::regclass
