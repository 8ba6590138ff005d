-- Sets search_path to $1 until this transaction ends; returns it.
select set_config('search_path', $1::text, true)
