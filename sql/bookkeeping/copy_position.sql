select cursor, rows_copied, batches, done from partition_switchover.copy_progress
  where workflow_id = $1::text and run_id = $2::text and table_name = $3::text and stream = $4::int
