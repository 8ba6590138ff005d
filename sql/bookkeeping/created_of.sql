select r.id::text, r.workflow_id, r.oid::text, c.relname, n.nspname from partition_switchover.created r
  left join pg_class c on c.oid = r.oid left join pg_namespace n on n.oid = c.relnamespace
  where r.schema_name = $1::text and r.table_name = $2::text and r.kind = $3::text and r.released_at is null order by r.id
