-- No parameters: the server's version as text and as a number.
select current_setting('server_version') as version, current_setting('server_version_num')::int as num
