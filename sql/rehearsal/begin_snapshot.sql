-- No parameters: begins a read-only transaction that sees one snapshot throughout.
begin isolation level repeatable read read only
