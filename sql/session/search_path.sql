-- the session's search_path (p); no parameters
select current_setting('search_path') as p
