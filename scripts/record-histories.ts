// Records the workflow histories that test/replay.test.ts replays: real runs on a fresh dev server
// (the project's CLI) against a fresh, small demo database, saved as `temporal workflow show
// --output json` writes them. Run `npm run record-histories` after every change to the workflows
// that is meant to be compatible, and commit test/histories/.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { DEMO_TABLES, seed } from '../demo/seed';
import { approveSignal, rejectSignal, signoffSignal, statusQuery, SwitchoverFleet, SwitchoverPhase, SwitchoverTables } from '../src/shared';
import { devServerExecutable } from '../src/temporal-cli';
import { createWorker } from '../bin/worker';

export const HISTORIES_DIR = join(__dirname, '..', 'test', 'histories');
const ADMIN_URL = process.env.PS_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TASK_QUEUE = 'record-histories';
const run = promisify(execFile);

/**
 * Makes verification fail for real: some rows copied into `<table>_partitioned` get one cent
 * more, through a row trigger that an event trigger attaches as soon as prepare creates the table.
 */
function sabotageSql(table: string): string[] {
  const target = `public.${table}_partitioned`;
  return [
    `create function record_histories_skew() returns trigger language plpgsql as $$
       begin if new.id % 50 = 7 then new.amount_cents := new.amount_cents + 1; end if; return new; end $$`,
    `create function record_histories_attach() returns event_trigger language plpgsql as $$
       begin
         if exists (select 1 from pg_event_trigger_ddl_commands() where object_identity = '${target}' and command_tag = 'CREATE TABLE') then
           execute 'create trigger record_histories_skew before insert on ${target} for each row execute function record_histories_skew()';
         end if;
       end $$`,
    `create event trigger record_histories_attach on ddl_command_end when tag in ('CREATE TABLE') execute function record_histories_attach()`,
  ];
}
const UNSABOTAGE_SQL = [
  'drop event trigger if exists record_histories_attach',
  'drop function if exists record_histories_attach()',
  'drop function if exists record_histories_skew() cascade',
];

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const executable = devServerExecutable();
  if (!executable) throw new Error('the Temporal CLI is not provisioned: run `bash scripts/temporal.sh --ensure` first');
  const started = Date.now();
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable, searchAttributes: [SwitchoverPhase, SwitchoverTables, SwitchoverFleet], extraArgs: ['--log-level', 'error'] },
  });
  const dbName = `ps_histories_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${dbName}`;
  const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
  // The rehearsals' staging target: a second database of the same server.
  await admin.query(`create database ${dbName}_staging`);
  const stagingUrl = new URL(dbUrl.toString());
  stagingUrl.pathname = `/${dbName}_staging`;
  const staging = new pg.Pool({ connectionString: stagingUrl.toString(), max: 2 });
  const connection = await NativeConnection.connect({ address: env.address });
  try {
    await seed(pool, { rows: 400, years: 1, organizations: 3, endDate: '2025-06-30' });
    await seed(staging, { rows: 300, years: 1, organizations: 3, endDate: '2025-06-30' });
    const targets = { default: dbUrl.toString(), staging: stagingUrl.toString() };
    const w = await createWorker({ connection, taskQueue: TASK_QUEUE, targets, log: () => undefined });
    const running = w.run();
    try {
      // `npm run record-histories -- rehearsals`: only the rehearsals (the others stay as recorded).
      if (!process.argv.includes('rehearsals')) await recordAll(env.client, pool, executable.path, env.address);
      await recordRehearsals(env.client, staging, executable.path, env.address);
    } finally {
      w.worker.shutdown();
      await running;
    }
  } finally {
    await connection.close();
    await pool.end();
    await staging.end();
    // pool.end() does not wait for the server to see the connections go; a forced drop would
    // then kill them under their clients, which throw.
    for (let i = 0; i < 50; i++) {
      const n = await admin.query('select count(*)::int as n from pg_stat_activity where datname = $1', [dbName]);
      if (n.rows[0].n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.query(`drop database if exists ${dbName}_staging with (force)`);
    await admin.end();
    await env.teardown();
  }
  console.log(`recorded into ${HISTORIES_DIR} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Saves a workflow's history as test/histories/<workflow id>.json. */
function saver(cli: string, address: string) {
  mkdirSync(HISTORIES_DIR, { recursive: true });
  // The file is named after the workflow id: the replay test passes it back as the id, which
  // the workflow uses (a child rollback's id is `<switchover id>-rollback`).
  return async (workflowId: string) => {
    const file = `${workflowId}.json`;
    const { stdout } = await run(cli, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', address], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const events = (JSON.parse(stdout) as { events: unknown[] }).events.length;
    writeFileSync(join(HISTORIES_DIR, file), stdout);
    console.log(`  ${file.padEnd(32)} ${workflowId} (${events} events)`);
  };
}

async function recordAll(client: Client, pool: pg.Pool, cli: string, address: string) {
  const save = saver(cli, address);
  const start = (workflowId: string, input: unknown) => client.workflow.start('switchover', { taskQueue: TASK_QUEUE, workflowId, args: [input] });
  const awaitingApproval = async (h: WorkflowHandle) => {
    const deadline = Date.now() + 120_000;
    let phase = '';
    while (Date.now() < deadline) {
      const s = await h.query(statusQuery);
      phase = s.phase;
      if (phase === 'awaiting_approval') return;
      if (['failed', 'done', 'rolled_back'].includes(phase)) throw new Error(`${h.workflowId} ended in ${phase}: ${s.error}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pending = (await h.describe()).raw.pendingActivities?.map((a) => `${a.activityType?.name}: ${a.lastFailure?.message}`);
    throw new Error(`${h.workflowId} never reached awaiting_approval (still in ${phase}; pending: ${pending?.join('; ') || 'none'})`);
  };
  const two = DEMO_TABLES.slice(0, 2);

  // A dry run: the plan only.
  await client.workflow.execute('switchover', { taskQueue: TASK_QUEUE, workflowId: 'dry-run', args: [{ tables: DEMO_TABLES, dryRun: true }] });
  await save('dry-run');

  /** A switchover that waits for approval, then gets the decision. */
  const decided = async (workflowId: string, input: unknown, decide: (h: WorkflowHandle) => Promise<void>) => {
    const h = await start(workflowId, input);
    await awaitingApproval(h);
    await decide(h);
    await h.result();
    await save(workflowId);
  };

  // Rejected at the approval step: the child rollback compensates.
  await decided('rejected', { tables: two, batchSize: 100 }, (h) => h.signal(rejectSignal, { by: 'bob', reason: 'recording a rejection' }));
  await save('rejected-rollback');

  // Failed: verification finds a difference (ParityMismatch), the child rollback compensates.
  for (const s of sabotageSql('expenses')) await pool.query(s);
  try {
    const failed = await start('failed-parity', { tables: two, batchSize: 100 });
    const err = await failed.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof WorkflowFailedError)) throw new Error('failed-parity was meant to fail');
  } finally {
    for (const s of UNSABOTAGE_SQL) await pool.query(s);
  }
  await save('failed-parity');
  await save('failed-parity-rollback');

  // Completed: several tables, approved, cut over; then rolled back after the cutover.
  await decided('completed', { tables: DEMO_TABLES, batchSize: 100 }, (h) => h.signal(approveSignal, { by: 'alice', comment: 'recording an approval' }));
  await client.workflow.execute('rollback', {
    taskQueue: TASK_QUEUE,
    workflowId: 'rollback-after-cutover',
    args: [{ switchoverWorkflowId: 'completed' }],
  });
  await save('rollback-after-cutover');

  // No approval required, then cleanup (drops the legacy table and the backup): one table through
  // the switchover's cleanup mode, one through the workflow type `cleanup`.
  await client.workflow.execute('switchover', {
    taskQueue: TASK_QUEUE,
    workflowId: 'unattended',
    args: [{ tables: DEMO_TABLES.slice(1), approval: { required: false } }],
  });
  await save('unattended');
  await client.workflow.execute('switchover', {
    taskQueue: TASK_QUEUE,
    workflowId: 'cleanup',
    args: [{ tables: DEMO_TABLES.slice(2), mode: 'cleanup' }],
  });
  await save('cleanup');
  await client.workflow.execute('cleanup', { taskQueue: TASK_QUEUE, workflowId: 'cleanup-type', args: [{ tables: [DEMO_TABLES[1].table] }] });
  await save('cleanup-type');
}

/**
 * Two rehearsals on the staging target, each signed off: the copy strategy on the demo tables and
 * the attach strategy on a table of bookings, both with the live writer.
 */
async function recordRehearsals(client: Client, staging: pg.Pool, cli: string, address: string) {
  const save = saver(cli, address);
  const signedOff = async (workflowId: string, input: unknown) => {
    const h = await client.workflow.start('rehearsal', { taskQueue: TASK_QUEUE, workflowId, args: [input] });
    const deadline = Date.now() + 180_000;
    for (;;) {
      const s = await h.query(statusQuery);
      if (s.phase === 'awaiting_signoff') break;
      if (s.phase === 'failed' || Date.now() > deadline) throw new Error(`${workflowId} did not reach awaiting_signoff (phase ${s.phase}: ${s.error})`);
      await new Promise((r) => setTimeout(r, 300));
    }
    await h.signal(signoffSignal, { by: 'dana', comment: 'recording a rehearsal' });
    await h.result();
    await save(workflowId);
  };
  await signedOff('rehearsal', { tables: DEMO_TABLES.slice(0, 2), database: 'staging', batchSize: 100, load: { ratePerSec: 40, durationMs: 1000 } });
  await staging.query(`
    create table bookings (id bigserial primary key, occurred_at timestamptz not null, amount_cents bigint not null default 0);
    insert into bookings (occurred_at, amount_cents) select now() - (g % 150) * interval '1 day' - g * interval '1 minute', g from generate_series(1, 300) g;
  `);
  await signedOff('rehearsal-attach', {
    strategy: 'attach',
    backup: 'none',
    database: 'staging',
    tables: [{ table: 'bookings', partitionKey: 'occurred_at', interval: 'month' }],
    load: { ratePerSec: 40, durationMs: 1000 },
  });
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
