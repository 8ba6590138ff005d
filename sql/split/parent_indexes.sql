-- the indexes of table $1 (regclass text) other than its primary key: name, unique, the definition from " USING " on (using), and the constraint it backs (contype, or null)
select c.relname as name, i.indisunique as unique,
       substr(pg_get_indexdef(i.indexrelid), strpos(pg_get_indexdef(i.indexrelid), ' USING ') + 1) as using,
       (select con.contype::text from pg_constraint con where con.conindid = i.indexrelid and con.conrelid = i.indrelid) as contype
  from pg_index i join pg_class c on c.oid = i.indexrelid
  where i.indrelid = $1::regclass and not i.indisprimary order by c.relname
