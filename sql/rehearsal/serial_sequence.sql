-- $1 qualified table name, $2 column: the sequence the column owns (null when none).
select pg_get_serial_sequence($1::text, $2::text) as seq
