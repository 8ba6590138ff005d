select distinct on (a.table_name) a.details from partition_switchover.audit a
  where a.schema_name = $1::text and a.stage = 'PLAN' and ($2::text[] is null or a.table_name = any($2::text[]))
  and exists (select 1 from partition_switchover.audit x where x.workflow_id = a.workflow_id
  and x.schema_name = a.schema_name and x.table_name = a.table_name and x.stage = 'CUTOVER')
  order by a.table_name, a.id desc
