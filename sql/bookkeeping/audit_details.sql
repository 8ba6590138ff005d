-- The details of an audit row of workflow $1, schema $2, table $3, stage $4 (of any run).
select details from partition_switchover.audit where workflow_id = $1::text and schema_name = $2::text and table_name = $3::text and stage = $4::text
