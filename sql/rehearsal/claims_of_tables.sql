-- $1 schema, $2 table names: the claims held on those tables, with the workflow holding each.
select table_name, workflow_id from partition_switchover.claims where schema_name = $1::text and table_name = any($2::text[])
