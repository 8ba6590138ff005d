-- No parameters: begins a read-only transaction.
begin read only
