-- $1 qualified table name: each column's name and storage width (attlen; -1 for variable length).
select attname, attlen from pg_attribute where attrelid = $1::regclass and attnum > 0
