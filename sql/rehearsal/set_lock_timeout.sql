-- $1 the lock_timeout ('1234ms'): set for the current transaction only.
select set_config('lock_timeout', $1::text, true)
