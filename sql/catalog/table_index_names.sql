-- $1 qualified table name: the names of its indexes.
select c.relname::text as name from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = $1::regclass
