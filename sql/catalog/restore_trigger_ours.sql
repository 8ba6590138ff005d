-- whether the trigger $2 (name) on table $1 (regclass text) runs partition_switchover.restore_log (ours); no row without such a trigger
select tgfoid = 'partition_switchover.restore_log'::regproc as ours from pg_trigger where tgrelid = $1::regclass and tgname = $2
