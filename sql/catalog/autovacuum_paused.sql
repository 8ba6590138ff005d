-- $1 qualified partitioned table name: its partitions whose autovacuum is off (the copy's
-- partitions, made WITH (autovacuum_enabled = false) by prepare), by name. None when the table
-- does not exist (renamed by a cutover that committed).
select k.relname as name
  from pg_inherits i join pg_class k on k.oid = i.inhrelid
 where i.inhparent = to_regclass($1::text)
   and (k.reloptions @> array['autovacuum_enabled=false']
        or exists (select 1 from pg_class t where t.oid = k.reltoastrelid and t.reloptions @> array['autovacuum_enabled=false']))
 order by 1
