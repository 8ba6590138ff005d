-- This transaction's commit does not wait for the WAL flush (no parameters, no rows).
set local synchronous_commit = off
