-- partitions of table $2 (text) in schema $1 (text) whose latest retention audit row says a concurrent detach began (status detaching): partition, its bounds (from, to), action, archive schema
select partition, "from", "to", action, archive_schema from (
  select distinct on (details->>'partition') details->>'partition' as partition, details->>'from' as "from", details->>'to' as "to",
    details->>'action' as action, details->>'archiveSchema' as archive_schema, details->>'status' as status
    from partition_switchover.audit
    where schema_name = $1::text and table_name = $2::text and stage like 'RETENTION-%'
    order by details->>'partition', id desc
) latest where status = 'detaching'
