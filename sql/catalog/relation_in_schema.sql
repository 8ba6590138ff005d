-- whether a relation named $2 (text) exists in schema $1 (text) (taken), and whether it is a plain table that is no partition (plain)
select count(*) > 0 as taken, coalesce(bool_or(c.relkind = 'r' and not c.relispartition), false) as plain
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname = $1::text and c.relname = $2::text
