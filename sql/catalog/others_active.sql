-- Whether a client session of this database that is not ours (application_name partition-switchover, this session) runs a statement now or ran one in the last 2 seconds (active); a session whose state this role may not see counts as active. No parameters.
select exists (
  select 1 from pg_stat_activity
   where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
     and coalesce(application_name, '') <> 'partition-switchover'
     and (state is null or state <> 'idle' or state_change > clock_timestamp() - interval '2 seconds')
) as active
