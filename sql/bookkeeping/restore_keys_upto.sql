-- the restore log's last position for table $1 (regclass text) as text (upto, 0 when empty)
select coalesce(max(seq), 0)::text as upto from partition_switchover.restore_keys where table_oid = $1::regclass
