-- partition-switchover's own bookkeeping in the migrated database: who holds which table,
-- and an audit row per run, table and stage that a DBA can read from SQL.
create schema if not exists partition_switchover;

create table if not exists partition_switchover.claims (
  schema_name text not null,
  table_name text not null,
  workflow_id text not null,
  claimed_at timestamptz not null default now(),
  primary key (schema_name, table_name)
);

create table if not exists partition_switchover.audit (
  id bigserial primary key,
  workflow_id text not null,
  schema_name text not null,
  table_name text not null,
  stage text not null,
  rows bigint,
  sums jsonb not null default '{}',
  row_hash text,
  ms integer,
  details jsonb not null default '{}',
  at timestamptz not null default now(),
  run_id text not null default '',
  constraint audit_run_stage_key unique (workflow_id, run_id, schema_name, table_name, stage)
);

-- Stage markers are keyed by run, not by workflow id: a second switchover under the same id
-- (after a reject) must not find the first run's PREPARED and skip making its table. Rows
-- written before this column existed keep run_id ''.
alter table partition_switchover.audit add column if not exists run_id text not null default '';
do $$
begin
  if exists (select from pg_constraint where conrelid = 'partition_switchover.audit'::regclass
             and conname = 'audit_workflow_id_schema_name_table_name_stage_key') then
    alter table partition_switchover.audit drop constraint audit_workflow_id_schema_name_table_name_stage_key;
  end if;
  if not exists (select from pg_constraint where conrelid = 'partition_switchover.audit'::regclass
                 and conname = 'audit_run_stage_key') then
    alter table partition_switchover.audit
      add constraint audit_run_stage_key unique (workflow_id, run_id, schema_name, table_name, stage);
  end if;
end $$;

-- What each switchover made (its partitioned table, backup) or took over (the legacy table, at
-- cutover), recorded in the transaction that made it. Rollback and cleanup drop a relation only
-- when the one under the expected name is still this one (same oid), never a table that merely
-- has our suffix. released_at: dropped by us, or (legacy) handed back to the application.
create table if not exists partition_switchover.created (
  id bigserial primary key,
  workflow_id text not null,
  run_id text not null,
  schema_name text not null,
  table_name text not null,
  name text not null,
  kind text not null,
  oid oid not null,
  at timestamptz not null default now(),
  released_at timestamptz
);

-- Every key the dual-write trigger wrote (legacy table's primary key, as a json array), in the
-- writer's transaction: the copy's re-check and the incremental verification compare only these
-- rows. Rows of a table are deleted by its rollback and its cleanup.
create table if not exists partition_switchover.changed_keys (
  seq bigint generated always as identity primary key,
  table_oid oid not null,
  key text not null
);

-- Each comparison reads, and the cutover and cleanup forget, one table's keys: by this index,
-- never a scan of every table's log.
create index if not exists changed_keys_table_seq on partition_switchover.changed_keys (table_oid, seq);

-- The dual-write trigger as installed (its pg_trigger row's xmin, as text): a trigger disabled and
-- enabled again, or replaced, since then has a new one, and writes made meanwhile may have passed
-- it. Verification then compares every row, and the cutover refuses.
create table if not exists partition_switchover.sync_baseline (
  table_oid oid not null,
  trigger_name text not null,
  trigger_xmin text not null,
  at timestamptz not null default now(),
  primary key (table_oid, trigger_name)
);

-- Statements that wrote a switchover's partitioned copy directly, not through the dual-write
-- trigger (recorded by that table's statement trigger ps_direct_write, enabled ALWAYS so a
-- session_replication_role = replica writer is seen too). The copy and the re-check's repair set
-- partition_switchover.writer and are not recorded. Verification compares every row when one is
-- there; the cutover refuses one made since verification.
create table if not exists partition_switchover.direct_writes (
  id bigserial primary key,
  table_oid oid not null,
  op text not null,
  by_user name not null default session_user,
  at timestamptz not null default now(),
  query text
);
create index if not exists direct_writes_table on partition_switchover.direct_writes (table_oid, id);

-- On the partitions too (a statement on one of them), recorded under the partitioned table; once
-- the parent's trigger is gone (dropped at cutover: the table is the application's) the
-- partitions' triggers record nothing, until cleanup drops them.
create or replace function partition_switchover.note_direct_write() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp as $ps$
declare
  root regclass := pg_partition_root(tg_relid);
begin
  if coalesce(current_setting('partition_switchover.writer', true), '') = ''
     and exists (select 1 from pg_trigger where tgrelid = root and tgname = tg_name) then
    insert into partition_switchover.direct_writes (table_oid, op, query)
      values (root, tg_op, left(current_query(), 200));
  end if;
  return null;
end
$ps$;
revoke all on function partition_switchover.note_direct_write() from public;

-- The copy's exact position per stream, written in the same transaction as each batch, so a
-- copy retried after a crash resumes after the last committed batch.
create table if not exists partition_switchover.copy_progress (
  workflow_id text not null,
  run_id text not null,
  table_name text not null,
  stream int not null,
  cursor text[],
  rows_copied bigint not null default 0,
  batches int not null default 0,
  done boolean not null default false,
  updated_at timestamptz not null default now(),
  primary key (workflow_id, run_id, table_name, stream)
);

-- The DBA's view: one row per switchover and table (a switchover of a table begins with its
-- PLAN row; everything recorded for that table until its next PLAN belongs to it, including
-- rows written by the rollback or cleanup workflows). `phase` is the last step the database
-- saw; `rows` is the verified row count, or the rows copied so far while the copy runs.
do $$
begin
  -- The first version of this view had other columns, which CREATE OR REPLACE cannot change.
  if exists (select from pg_attribute where attrelid = to_regclass('partition_switchover.latest') and attname = 'rows_copied') then
    drop view partition_switchover.latest;
  end if;
end $$;
create or replace view partition_switchover.latest as
with runs as (
  select p.id, p.workflow_id, p.schema_name, p.table_name, p.at as started,
    lead(p.id) over (partition by p.schema_name, p.table_name order by p.id) as next_id
  from partition_switchover.audit p
  where p.stage = 'PLAN'
)
select
  r.schema_name,
  r.table_name,
  r.workflow_id,
  case
    when s.stages @> '{ROLLBACK}' then 'rolled_back'
    when s.stages @> '{CLEANUP}' then 'cleaned_up'
    when s.stages @> '{CUTOVER}' then 'cut_over'
    when ap.state = 'rejected' then 'rejected'
    when ap.state = 'approved' then 'approved'
    when s.stages @> '{POST-MIGRATION}' then 'verified'
    when cp.rows is not null then 'copying'
    when s.stages @> '{TRIGGERS}' then 'triggers'
    when s.stages @> '{PREPARED}' then 'prepared'
    when s.stages @> '{POST-BACKUP}' then 'backed_up'
    else 'preflight'
  end as phase,
  r.started,
  coalesce(pm.rows, cp.rows) as rows,
  case when ap.state = 'approved' then ap.by end as approved_by,
  case when ap.state = 'approved' then ap.at end as approved_at,
  s.updated
from runs r
cross join lateral (
  select array_agg(a.stage) as stages, max(a.at) as updated
  from partition_switchover.audit a
  where a.schema_name = r.schema_name and a.table_name = r.table_name
    and a.id >= r.id and (r.next_id is null or a.id < r.next_id)
) s
left join lateral (
  select a.rows from partition_switchover.audit a
  where a.workflow_id = r.workflow_id and a.schema_name = r.schema_name and a.table_name = r.table_name
    and a.stage = 'POST-MIGRATION' and a.id > r.id and (r.next_id is null or a.id < r.next_id)
  order by a.id desc limit 1
) pm on true
-- The approval is recorded once per switchover (on its first table) and holds for all its tables.
left join lateral (
  select a.details ->> 'state' as state, a.details ->> 'by' as by, a.at from partition_switchover.audit a
  where a.workflow_id = r.workflow_id and a.stage = 'APPROVAL' and a.id > r.id and (r.next_id is null or a.id < r.next_id)
  order by a.id desc limit 1
) ap on true
-- Rows copied so far, from the latest run of the workflow (a reset starts a new run).
left join lateral (
  select sum(c.rows_copied)::bigint as rows from partition_switchover.copy_progress c
  where c.workflow_id = r.workflow_id and c.table_name = r.table_name
    and c.run_id = (select c2.run_id from partition_switchover.copy_progress c2
                    where c2.workflow_id = r.workflow_id and c2.table_name = r.table_name
                    order by c2.updated_at desc limit 1)
  having count(*) > 0
) cp on true;
