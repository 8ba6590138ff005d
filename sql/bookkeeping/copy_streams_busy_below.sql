-- How many streams below stream $4 of table $3 in run ($1 workflow id, $2 run id) have not
-- recorded their last batch yet (a stream's done is committed with that batch, before its
-- activity completes and the workflow learns of it).
select ($4::int - count(*))::int as busy from partition_switchover.copy_progress
  where workflow_id = $1::text and run_id = $2::text and table_name = $3::text and stream < $4::int and done
