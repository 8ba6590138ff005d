-- lock_timeout = $1 (text, e.g. '400ms') until the transaction ends; returns the setting
select set_config('lock_timeout', $1::text, true)
