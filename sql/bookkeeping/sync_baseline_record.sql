-- The dual-write trigger as it is now becomes the one writes are compared against ($1 table, $2 trigger).
insert into partition_switchover.sync_baseline (table_oid, trigger_name, trigger_xmin)
select t.tgrelid, t.tgname::text, t.xmin::text from pg_trigger t
  where t.tgrelid = $1::text::regclass and t.tgname = $2::text
on conflict (table_oid, trigger_name) do update set trigger_xmin = excluded.trigger_xmin, at = now()
