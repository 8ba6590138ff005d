select pg_try_advisory_lock(hashtext($1::text)) as ok
