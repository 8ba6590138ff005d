-- One tiny committed transaction with an xid, so its commit writes and flushes a commit record (simple protocol; no parameters).
begin; select pg_current_xact_id(); commit
