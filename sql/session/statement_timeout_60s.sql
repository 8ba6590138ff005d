-- Settings of this transaction: a statement runs at most 60 s (no parameters, no rows).
set local statement_timeout = '60s'
