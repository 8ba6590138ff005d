-- a valid, whole-table, plain btree index of table $1 (regclass text) whose first column is $2 (the partition key): name, or no row
select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am am on am.oid = c.relam
  where i.indrelid = $1::regclass and i.indisvalid and i.indpred is null and i.indexprs is null and am.amname = 'btree'
    and i.indkey[0] = (select a.attnum from pg_attribute a where a.attrelid = $1::regclass and a.attname = $2::text)
  order by i.indnatts, c.relname limit 1
