-- the server's lock table settings: max_locks_per_transaction (locks), max_connections (conns), max_prepared_transactions (prepared); no parameters
select current_setting('max_locks_per_transaction')::int as locks, current_setting('max_connections')::int as conns, current_setting('max_prepared_transactions')::int as prepared
