-- $1 qualified partitioned table, $2 names of our own triggers: every other trigger on it or its
-- partitions (not internal ones such as foreign key checks), as `relation.trigger (state)`, a
-- trigger cloned from the parent shown once, on the parent.
select format('%s.%I (%s)', t.tgrelid::regclass, t.tgname,
              case t.tgenabled when 'D' then 'disabled' when 'A' then 'enabled always' when 'R' then 'enabled for replicas' else 'enabled' end) as trigger
from pg_partition_tree(to_regclass($1::text)) p
join pg_trigger t on t.tgrelid = p.relid
where not t.tgisinternal and t.tgname <> all($2::text[]) and t.tgparentid = 0
order by 1
