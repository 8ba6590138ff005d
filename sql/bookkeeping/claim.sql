insert into partition_switchover.claims (schema_name, table_name, workflow_id) values ($1::text, $2::text, $3::text)
  on conflict (schema_name, table_name) do nothing
