delete from partition_switchover.claims where schema_name = $1::text and table_name = any($2::text[])
