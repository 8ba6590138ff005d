-- No parameters: the session's lock_timeout, statement_timeout and idle_in_transaction_session_timeout.
select current_setting('lock_timeout') as lock, current_setting('statement_timeout') as stmt,
       current_setting('idle_in_transaction_session_timeout') as idle
