-- A transaction that reads one snapshot throughout (no parameters).
begin isolation level repeatable read
