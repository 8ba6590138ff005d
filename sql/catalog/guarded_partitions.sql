-- Partitions of table $1 (any depth) that still have the statement trigger $2, at most $3.
select c.relname::text as name
from pg_partition_tree($1::regclass) t
join pg_class c on c.oid = t.relid
where t.level > 0 and exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgname = $2::text)
order by 1
limit $3::int
