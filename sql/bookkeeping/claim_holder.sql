select workflow_id from partition_switchover.claims where schema_name = $1::text and table_name = $2::text
