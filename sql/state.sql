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
  unique (workflow_id, schema_name, table_name, stage)
);

create or replace view partition_switchover.latest as
select distinct on (a.workflow_id, a.schema_name, a.table_name)
  a.workflow_id,
  a.schema_name,
  a.table_name,
  a.stage as phase,
  (select min(s.at) from partition_switchover.audit s where s.workflow_id = a.workflow_id) as started,
  (select s.rows from partition_switchover.audit s
    where s.workflow_id = a.workflow_id and s.table_name = a.table_name and s.stage = 'POST-MIGRATION') as rows_copied,
  (select s.details ->> 'by' from partition_switchover.audit s
    where s.workflow_id = a.workflow_id and s.stage = 'APPROVAL' limit 1) as approved_by,
  a.at as updated
from partition_switchover.audit a
order by a.workflow_id, a.schema_name, a.table_name, a.at desc, a.id desc;

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
