-- $1 schema, $2 table, $3 kind, $4 a relation's qualified name: the record that this switchover's table made (or took over) the relation under that name now, if any.
select r.id::text as id from partition_switchover.created r
where r.schema_name = $1::text and r.table_name = $2::text and r.kind = $3::text and r.released_at is null
  and r.oid = to_regclass($4::text)
