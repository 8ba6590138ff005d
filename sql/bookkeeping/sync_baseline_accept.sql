-- Every row compared equal with the trigger as it was read ($3, its pg_trigger xmin): that is the baseline now.
update partition_switchover.sync_baseline set trigger_xmin = $3::text, at = now()
  where table_oid = $1::text::regclass and trigger_name = $2::text
