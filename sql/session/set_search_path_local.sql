-- Sets search_path to $1 (text) until this transaction ends; returns the setting.
select set_config('search_path', $1::text, true)
