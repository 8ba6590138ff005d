select pg_advisory_xact_lock(hashtext('partition_switchover.state'))
