-- forgets the restore log of table $1 (regclass text); returns nothing
delete from partition_switchover.restore_keys where table_oid = $1::regclass
