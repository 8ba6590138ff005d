-- Whether a client session of this database that is not ours (application_name partition-switchover, this session) may be writing: it is in a transaction (idle in transaction, or one holding an xid), or it runs a statement now or ran one in the last 2 seconds that is not a plain read (SELECT, SHOW, EXPLAIN, FETCH: a monitor polling has nothing for the throttle to protect; a session just connected that ran nothing yet neither); a session whose state this role may not see counts as writing. No parameters.
select exists (
  select 1 from pg_stat_activity
   where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
     and coalesce(application_name, '') <> 'partition-switchover'
     and (state is null or backend_xid is not null or state like 'idle in transaction%'
          or ((state <> 'idle' or state_change > clock_timestamp() - interval '2 seconds')
              and query <> '' and query !~* '^\s*(select|show|explain|fetch)\M'))
) as active
