select rows, sums, row_hash, ms, details, at from partition_switchover.audit
  where workflow_id = $1::text and run_id = $5::text and schema_name = $2::text and table_name = $3::text and stage = $4::text
