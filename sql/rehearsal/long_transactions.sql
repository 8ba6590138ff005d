-- No parameters: up to 5 other sessions of this database with a transaction open longer than 60 seconds, oldest first.
select pid, usename, application_name, state, extract(epoch from now() - xact_start)::int as seconds
  from pg_stat_activity
 where datname = current_database() and pid <> pg_backend_pid() and xact_start < now() - interval '60 seconds'
 order by xact_start limit 5
