-- The dual-write trigger ($2 on table $1) now, beside the one recorded at install or last verification.
select b.trigger_xmin as baseline, t.xmin::text as current, t.tgenabled::text as enabled
from (select $1::text::regclass as rel) r
left join partition_switchover.sync_baseline b on b.table_oid = r.rel and b.trigger_name = $2::text
left join pg_trigger t on t.tgrelid = r.rel and t.tgname = $2::text
