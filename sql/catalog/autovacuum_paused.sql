-- $1 qualified partitioned table name, $2 / $3 whether the table itself has autovacuum off / its
-- TOAST table has: its partitions whose autovacuum is off (or their TOAST table's) where the
-- table's is not (the copy's partitions, made so by prepare), by name. None when the table does
-- not exist (renamed by a cutover that committed).
select k.relname as name
  from pg_inherits i join pg_class k on k.oid = i.inhrelid
 where i.inhparent = to_regclass($1::text)
   and ((not $2::boolean and k.reloptions @> array['autovacuum_enabled=false'])
        or (not $3::boolean and exists (select 1 from pg_class t where t.oid = k.reltoastrelid and t.reloptions @> array['autovacuum_enabled=false'])))
 order by 1
