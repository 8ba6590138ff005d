insert into partition_switchover.created (workflow_id, run_id, schema_name, table_name, name, kind, oid)
  select $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, c.oid
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $3::text and c.relname = $5::text
