-- No parameters: the database's size, the data directory (null when hidden from the role) and max_wal_size in bytes.
select pg_database_size(current_database())::bigint as size,
       (select setting from pg_settings where name = 'data_directory') as dir,
       pg_size_bytes(current_setting('max_wal_size'))::bigint as max_wal
