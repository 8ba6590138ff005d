-- The sessions that hold (granted) a lock on what backend $1 waits for, except ours (application
-- partition-switchover) and those of a role in $2 or a member of one, sent pg_cancel_backend, or
-- pg_terminate_backend when $3; one row per session with what it ran and whether the signal went
-- out. Sessions only queued ahead of $1 (application writers waiting too) are never touched.
with recursive protected(oid) as (
  -- The roles of $2 and their members, at any depth (pg_has_role would count a superuser in every role).
  select oid from pg_roles where rolname = any($2::text[])
  union
  select m.member from pg_auth_members m join protected p on m.roleid = p.oid
), waiting as (
  select locktype, database, relation, page, tuple, transactionid, virtualxid
    from pg_locks where pid = $1 and not granted
), holders as materialized (
  select distinct b.pid, b.usename::text as usename, coalesce(b.application_name, '') as application_name,
         coalesce(b.state, '') as state, b.query_start, left(coalesce(b.query, ''), 200) as query
    from unnest(pg_blocking_pids($1)) as bp(pid)
    join pg_locks h on h.pid = bp.pid and h.granted
    join waiting w on h.locktype = w.locktype
     and h.database is not distinct from w.database and h.relation is not distinct from w.relation
     and h.page is not distinct from w.page and h.tuple is not distinct from w.tuple
     and h.transactionid is not distinct from w.transactionid and h.virtualxid is not distinct from w.virtualxid
    join pg_stat_activity b on b.pid = bp.pid
   where coalesce(b.application_name, '') <> 'partition-switchover'
     and b.usesysid not in (select oid from protected)
)
select pid, usename, application_name, state, query_start, query,
       case when $3::boolean then pg_terminate_backend(pid) else pg_cancel_backend(pid) end as signalled
  from holders
