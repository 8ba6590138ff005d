-- the latest history split plan recorded for table $2 of schema $1 (SPLIT-PLAN audit row), its details
select a.details from partition_switchover.audit a
  where a.schema_name = $1::text and a.table_name = $2::text and a.stage = 'SPLIT-PLAN' order by a.id desc limit 1
