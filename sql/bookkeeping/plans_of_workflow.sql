select details from partition_switchover.audit a where workflow_id = $1::text and stage = 'PLAN'
  and run_id = (select run_id from partition_switchover.audit where workflow_id = $1::text and stage = 'PLAN' order by id desc limit 1)
  order by id
