-- No parameters: what the server says it is: its cluster's system identifier, the database's oid and name, and whether it is reached on this host (a socket or loopback).
select (select system_identifier::text from pg_control_system()) as system,
       (select oid::text from pg_database where datname = current_database()) as database_oid,
       current_database() as database,
       coalesce(inet_server_addr() <<= '127.0.0.0/8'::inet or inet_server_addr() = '::1'::inet, true) as local
