-- $1 workflow ids: deletes their copy positions; the row count is how many were dropped.
delete from partition_switchover.copy_progress where workflow_id = any($1::text[])
