-- Sets this session's lock_timeout to $1 (text) until set again; returns the setting it had (previous).
select current_setting('lock_timeout') as previous, set_config('lock_timeout', $1::text, false)
