-- The session's search_path now, as p (no parameters).
select current_setting('search_path') as p
