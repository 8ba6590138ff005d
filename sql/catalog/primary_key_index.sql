-- $1 qualified table name: its primary key's deferrability, index (qualified as needed) and that index's size in bytes; no row without a primary key.
select c.condeferrable, c.conindid::regclass::text as index, pg_relation_size(c.conindid) as bytes
  from pg_constraint c where c.conrelid = $1::regclass and c.contype = 'p'
