-- a lock_timeout of 500 ms until the transaction ends (ANALYZE gives up quickly behind a held lock); no parameters
set local lock_timeout = '500ms'
