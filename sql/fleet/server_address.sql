-- the server's address and port, the server's identity when pg_control_system() is not permitted to the worker's role; no parameters
select coalesce(inet_server_addr()::text, 'local') || ':' || current_setting('port') as id
