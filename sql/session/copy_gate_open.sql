-- Opens a table's copy gate ($1 text: the gate's key) that this session closed; returns whether it was closed.
select pg_advisory_unlock(hashtext($1::text)) as opened
