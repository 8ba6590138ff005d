-- Closes a table's copy gate ($1 text: the gate's key) for this session: waits (up to lock_timeout) until no batch of the table is in flight and holds new ones until copy_gate_open; no rows of interest.
select pg_advisory_lock(hashtext($1::text))
