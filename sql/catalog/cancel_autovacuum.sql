-- Autovacuum workers holding a lock on the relations named in $1 (qualified names) or on their
-- partitions, cancelled, except those that prevent wraparound (PostgreSQL never cancels those
-- for a waiting lock either). One row per relation and worker: whether the cancel was sent.
with rels as (
  select t.relid
    from unnest($1::text[]) as n(name)
    cross join lateral pg_partition_tree(to_regclass(n.name)) as t
   where to_regclass(n.name) is not null
), workers as (
  select distinct a.pid, l.relation::regclass::text as relation
    from pg_locks l
    join pg_stat_activity a on a.pid = l.pid
   where l.relation in (select relid from rels)
     and a.backend_type = 'autovacuum worker'
     and a.query not like '%to prevent wraparound%'
)
select relation, pg_cancel_backend(pid) as cancelled from workers
