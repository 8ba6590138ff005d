-- the server's identity (system_identifier), the same for every database of one server; no parameters
select system_identifier::text as id from pg_control_system()
