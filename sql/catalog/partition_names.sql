-- $1 qualified table name: the names of its partitions (none when it has none or does not exist).
select k.relname as name from pg_inherits i join pg_class k on k.oid = i.inhrelid where i.inhparent = to_regclass($1::text)
