-- starts a transaction in repeatable read: its statements share one snapshot; no parameters
begin isolation level repeatable read
