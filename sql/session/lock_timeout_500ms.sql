-- Settings of this transaction: a lock is waited for at most 500 ms (no parameters, no rows).
set local lock_timeout = '500ms'
