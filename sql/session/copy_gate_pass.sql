-- A copy batch passes its table's gate ($1 text: the gate's key): a shared lock held until the batch's transaction ends, so a stream that closes the gate (copy_gate_close) waits for the batches in flight and holds new ones.
select pg_advisory_xact_lock_shared(hashtext($1::text))
