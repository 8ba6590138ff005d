-- partition_switchover.restoring = on until the transaction ends: the restore's own writes are not logged (bookkeeping/restore_log.sql); no parameters
select set_config('partition_switchover.restoring', 'on', true)
