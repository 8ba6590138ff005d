-- Exports this transaction's snapshot for other sessions: its id as s (no parameters).
select pg_export_snapshot() as s
