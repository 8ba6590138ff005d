-- A read-only transaction that reads one snapshot throughout (no parameters).
begin isolation level repeatable read read only
