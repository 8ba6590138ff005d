-- $1 workflow id, $2 run id, $3 schema, $4 table, $5 kind, $6 a relation's qualified name: records that this switchover made (or took over) it, by oid.
insert into partition_switchover.created (workflow_id, run_id, schema_name, table_name, name, kind, oid)
  select $1::text, $2::text, $3::text, $4::text, $6::text, $5::text, to_regclass($6::text)::oid where to_regclass($6::text) is not null
