select pg_advisory_unlock(hashtext($1::text))
