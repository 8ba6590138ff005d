// Thousands of partitions (issue 21 item 6): a `day` switchover over more than 8 years of a table
// with a text column (a TOAST table and its index per partition) on the server's default lock
// table (max_locks_per_transaction 64). Prepare creates the partitions and the rollback drops
// them in transactions sized to the lock table, as the plan says; the switchover completes too.
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { createPools } from '../src/db';
import { switchoverInput } from '../src/input';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { dump } from './failure-helpers';
import { tableRows, uniqueId, waitFor, waitForPhase, type TestDb, type TestWorker, databaseAndWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

databaseAndWorker((d, x) => ([db, w] = [d, x]));

/** `name`: id, a day key from 2018-01-01 to today (two rows a day), a text note. */
async function daily(name: string) {
  await db.pool.query(
    `create table ${name} (id bigint generated always as identity primary key, booked_at timestamptz not null, note text not null, amount bigint not null)`,
  );
  await db.pool.query(
    `insert into ${name} (booked_at, note, amount)
     select d + interval '6 hours' * k, repeat('n', 40) || d::date, k * 100 from generate_series('2018-01-01'::timestamptz, now(), '1 day') d, generate_series(1, 2) k`,
  );
}

function start(table: string, approval: Record<string, unknown>) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(`days-${table}`),
    args: [{ tables: [{ table, partitionKey: 'booked_at', interval: 'day' }], batchSize: 500, approval }],
  });
}

const partitions = async (parent: string) =>
  Number((await db.pool.query(`select count(*)::int as n from pg_inherits where inhparent = to_regclass($1)`, [parent])).rows[0].n);

test('over 3,000 day partitions: prepare, reject while the next stages run, and the rollback completes; the plan says how many transactions', async () => {
  await daily('daily_rej');
  const plain = await dump(db.url, { schemaOnly: true });
  const before = await tableRows(db.pool, 'daily_rej');
  const handle = await start('daily_rej', { required: true });
  // Every partition made (prepare done): the reject cancels whichever stage runs then (the whole
  // run to approval is the next test's).
  const status = await waitFor(
    async () => {
      const s = await handle.query(statusQuery);
      return ['triggers', 'copy', 'verify', 'awaiting_approval'].includes(s.phase) && s;
    },
    'prepare done',
    600_000,
  );
  const tp = status.plan!.tables[0];
  expect(tp.partitions.length).toBeGreaterThanOrEqual(3000);
  expect(await partitions('daily_rej_partitioned')).toBe(tp.partitions.length);
  const note = tp.warnings.find((x) => x.includes('per transaction'));
  expect(note).toMatch(
    /prepare creates daily_rej_partitioned in one transaction, then its partitions 32 per transaction \(\d+ transactions\), and a rollback drops them the same way/,
  );
  expect(note).toContain('max_locks_per_transaction 64');

  await handle.signal(rejectSignal, { by: 'bob', reason: 'too many days' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('rejected');
  expect(report.rollback).toMatchObject({ ok: true });
  expect((await handle.query(statusQuery)).phase).toBe('rolled_back');
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plain);
  expect(await tableRows(db.pool, 'daily_rej')).toEqual(before);
}, 900_000);

test('over 3,000 day partitions: the whole switchover completes', async () => {
  await daily('daily_all');
  const before = await tableRows(db.pool, 'daily_all');
  const handle = await start('daily_all', { required: true });
  const status = await waitForPhase(handle, 'awaiting_approval', 600_000);
  const n = status.plan!.tables[0].partitions.length;
  expect(n).toBeGreaterThanOrEqual(3000);
  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'daily_all'::regclass`)).rows[0].relkind).toBe('p');
  expect(await partitions('daily_all')).toBe(n);
  expect(await tableRows(db.pool, 'daily_all')).toEqual(before);
}, 900_000);

test('prepare and the rollback resume where a crash left them, batch by batch', async () => {
  await db.pool.query(`create table resumed (id bigint primary key, at timestamptz not null, note text not null);
    insert into resumed select g, now() - g * interval '1 day', 'n' || g from generate_series(1, 200) g`);
  const pools = createPools({ default: db.url });
  const acts = createActivities({ pools });
  const mock = new MockActivityEnvironment({ workflowExecution: { workflowId: uniqueId('resume'), runId: 'r1' } });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => mock.run(fn, ...a) as Promise<R>;
  const names = async () =>
    (
      await db.pool.query(
        `select c.relname as n from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'resumed_partitioned'::regclass order by 1`,
      )
    ).rows.map((r) => r.n as string);
  try {
    const plan = await run(acts.preflight, switchoverInput.parse({ tables: [{ table: 'resumed', partitionKey: 'at', interval: 'day' }] }));
    const tp = plan.tables[0];
    await run(acts.ensureState, 'default');
    await run(acts.claimTables, 'default', plan.tables);
    const first = await run(acts.prepareTable, 'default', tp);
    expect(first.transactions).toBe(1 + Math.ceil(tp.partitions.length / 32));
    // As if the worker died after the first batches: the last 100 partitions and PREPARED missing.
    const all = await names();
    expect(all.length).toBe(tp.partitions.length);
    await db.pool.query(`drop table ${all.slice(-100).join(', ')}`);
    await db.pool.query(`delete from partition_switchover.audit where table_name = 'resumed' and stage = 'PREPARED'`);
    const again = await run(acts.prepareTable, 'default', tp);
    expect(again.transactions).toBe(1 + Math.ceil(100 / 32));
    expect(await names()).toEqual(all);
    // The rollback's drop cut short after some batches: the next run drops what is left.
    await db.pool.query(`drop table ${all.slice(0, 50).join(', ')}`);
    const rb = await run(acts.rollbackTable, 'default', tp, { restoreBackup: false, lockTimeoutMs: 2000 });
    expect(rb.from).toBe('prepared');
    expect((await db.pool.query(`select to_regclass('resumed_partitioned') is null as gone`)).rows[0].gone).toBe(true);
    expect((await db.pool.query(`select count(*)::int as n from pg_class where relname like 'resumed%' and relkind in ('r', 'p')`)).rows[0].n).toBe(1);
  } finally {
    await pools.end();
  }
}, 300_000);
