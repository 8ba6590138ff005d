select distinct on (table_name) details from partition_switchover.audit
  where schema_name = $1::text and table_name = any($2::text[]) and stage = 'PLAN' order by table_name, id desc
