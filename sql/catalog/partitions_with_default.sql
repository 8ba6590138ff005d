select c.relname as name, p.partdefid = c.oid as is_default
  from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_partitioned_table p on p.partrelid = i.inhparent
  where i.inhparent = $1::regclass
