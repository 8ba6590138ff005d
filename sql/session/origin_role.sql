-- session_replication_role back to origin for the rest of the transaction; no parameters
set local session_replication_role = origin
