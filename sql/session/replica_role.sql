-- session_replication_role = replica until the transaction ends (the application's triggers do not fire); no parameters
set local session_replication_role = replica
