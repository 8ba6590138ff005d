-- Sessions the cutover signalled (cutover.cancelBlockersAfter), appended to the run's CUTOVER-CANCELLED
-- audit row: $1 workflow id, $2 run id, $3 schema, $4 table, $5 jsonb array of sessions (may be
-- empty). Returns every session recorded for the run so far, oldest first.
insert into partition_switchover.audit (workflow_id, run_id, schema_name, table_name, stage, details)
  values ($1::text, $2::text, $3::text, $4::text, 'CUTOVER-CANCELLED', jsonb_build_object('sessions', $5::jsonb))
  on conflict (workflow_id, run_id, schema_name, table_name, stage) do update
  set details = jsonb_build_object('sessions', coalesce(audit.details -> 'sessions', '[]'::jsonb) || (excluded.details -> 'sessions')), at = now()
  returning details -> 'sessions' as sessions
