-- What backend $1 waits for (a lock not granted) and the sessions that block it.
select l.mode, coalesce(l.relation::regclass::text, l.locktype) as object,
       b.pid, b.application_name, b.usename::text as usename, b.state,
       round(extract(epoch from now() - b.xact_start)::numeric, 1)::text as xact_s, left(b.query, 200) as query
from pg_locks l
cross join lateral unnest(pg_blocking_pids($1)) as bp(pid)
join pg_stat_activity b on b.pid = bp.pid
where l.pid = $1 and not l.granted
limit 3
