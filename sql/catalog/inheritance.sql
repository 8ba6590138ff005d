-- $1 qualified table name: x, whether it has an inheritance parent or child (partitions count too).
select exists (select 1 from pg_inherits where inhrelid = $1::regclass or inhparent = $1::regclass) as x
