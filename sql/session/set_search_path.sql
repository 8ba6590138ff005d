-- sets the session's search_path to $1 (text) until changed again (not only this transaction); returns the setting
select set_config('search_path', $1::text, false)
