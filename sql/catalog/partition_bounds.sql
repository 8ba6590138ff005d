-- the partitions of table $1 (regclass text) with their bound as text (bound; read under timezone UTC) and whether a DETACH CONCURRENTLY of it is pending (pending)
select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound, i.inhdetachpending as pending
  from pg_inherits i join pg_class c on c.oid = i.inhrelid
  where i.inhparent = $1::regclass
