insert into partition_switchover.copy_progress (workflow_id, run_id, table_name, stream, cursor, rows_copied, batches, done)
  values ($1::text, $2::text, $3::text, $4::int, $5::text[], $6::bigint, $7::int, $8::boolean)
  on conflict (workflow_id, run_id, table_name, stream) do update
  set cursor = excluded.cursor, rows_copied = excluded.rows_copied, batches = excluded.batches,
  done = excluded.done, updated_at = now()
