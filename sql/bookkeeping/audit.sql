insert into partition_switchover.audit (workflow_id, run_id, schema_name, table_name, stage, rows, sums, row_hash, ms, details)
  values ($1::text, $10::text, $2::text, $3::text, $4::text, $5::bigint, $6::jsonb, $7::text, $8::int, $9::jsonb)
  on conflict (workflow_id, run_id, schema_name, table_name, stage) do update
  set rows = excluded.rows, sums = excluded.sums, row_hash = excluded.row_hash, ms = excluded.ms,
  details = excluded.details, at = now()
  returning at
