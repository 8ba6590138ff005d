-- The restore from backup (activities/backup.ts restoreBackup) puts the rows back in batches while
-- the application keeps writing: this trigger function (on the table while it runs, arguments the
-- key columns) logs the key of every application write, so the last of them are put back under
-- the table's lock. Writes of the restore itself (partition_switchover.restoring on) are not logged.
create table if not exists partition_switchover.restore_keys (
  seq bigint generated always as identity primary key,
  table_oid oid not null,
  key text not null
);
create index if not exists restore_keys_table on partition_switchover.restore_keys (table_oid, seq);
create or replace function partition_switchover.restore_log() returns trigger language plpgsql
  security definer set search_path = pg_catalog, pg_temp as $ps$
begin
  if current_setting('partition_switchover.restoring', true) = 'on' then
    return null;
  end if;
  if tg_op <> 'INSERT' then
    insert into partition_switchover.restore_keys (table_oid, key)
      select tg_relid, jsonb_agg(to_jsonb(old) -> a order by o)::text from unnest(tg_argv) with ordinality u(a, o);
  end if;
  if tg_op <> 'DELETE' then
    insert into partition_switchover.restore_keys (table_oid, key)
      select tg_relid, jsonb_agg(to_jsonb(new) -> a order by o)::text from unnest(tg_argv) with ordinality u(a, o);
  end if;
  return null;
end
$ps$;
revoke all on function partition_switchover.restore_log() from public;
