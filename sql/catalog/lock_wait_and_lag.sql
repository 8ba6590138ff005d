-- The longest wait of another application's session of this database for its lock, and the longest replication lag (both ms, 0 when none; no parameters).
select coalesce((select max(extract(epoch from clock_timestamp() - l.waitstart) * 1000)
                   from pg_locks l join pg_stat_activity a on a.pid = l.pid
                  where not l.granted and l.waitstart is not null and a.datname = current_database()
                    and a.application_name <> 'partition-switchover'), 0)::float8 as lock_wait_ms,
       coalesce((select max(extract(epoch from replay_lag) * 1000) from pg_stat_replication), 0)::float8 as lag_ms
