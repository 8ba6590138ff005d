// Statistics behind the approval (issue 23 item 3): the ANALYZE of the partitioned table runs on
// while approval waits, so the operator reads the verification without waiting for it. An approve
// that comes before it finished waits for it (the table is still plain meanwhile); its failure
// ends the wait and rolls back, with nobody deciding. Real PostgreSQL and a real dev server.
import pg from 'pg';
import { approveSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { failureOf, injectAfter, type Injection } from './failure-helpers';
import { databasesAndWorker, tableRows, uniqueId, waitFor, waitForPhase, type TestDb } from './helpers';

const plan = new Map<string, Injection>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const env = databasesAndWorker(
  ['held', 'failing'],
  async (db) => {
    await db.pool.query(`
    create table ledger (id bigserial primary key, booked_at timestamptz not null, status text not null, amount_cents bigint not null);
    create index on ledger (status);
    insert into ledger (booked_at, status, amount_cents)
      select now() - (g % 300) * interval '1 day', (array['open', 'paid'])[1 + g % 2], g from generate_series(1, 3000) g;
  `);
  },
  { wrapActivities: injectAfter(plan) },
);
const dbs = env.dbs;

function start(database: string, id: string) {
  return env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: id,
    args: [{ tables: [{ table: 'ledger', partitionKey: 'booked_at', interval: 'month' }], database, batchSize: 500, backup: 'none' }],
  });
}

const kind = async (db: TestDb) => (await db.pool.query(`select relkind::text as k from pg_class where oid = 'ledger'::regclass`)).rows[0].k as string;

test('an approve while the statistics are still gathered waits for them; the table stays plain meanwhile, then cuts over with them in place', async () => {
  const db = dbs.held;
  const id = uniqueId('stats-held');
  // Another session holds a partition in the lock ANALYZE takes from just before the analyze
  // step starts: its statistics cannot be had until the test lets go.
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  plan.set(id, {
    activity: 'analyzeTable',
    before: true,
    action: async () => {
      const part = (await db.pool.query(`select min(inhrelid::regclass::text) as p from pg_inherits where inhparent = 'ledger_partitioned'::regclass`)).rows[0]
        .p;
      await holder.query('begin');
      await holder.query(`lock table ${part} in share update exclusive mode`);
    },
  });
  try {
    const handle = await start('held', id);
    const waiting = await waitForPhase(handle, 'awaiting_approval');
    expect(waiting.verification?.ok).toBe(true);
    await waitFor(async () => (await handle.query(statusQuery)).statistics?.ledger === 'gathering', 'statistics gathering while approval waits');
    await handle.signal(approveSignal, { by: 'alice' });
    await sleep(1000);
    const s = await handle.query(statusQuery);
    expect(s.approval).toMatchObject({ state: 'approved', by: 'alice' });
    expect(s.phase).toBe('awaiting_approval');
    expect(s.statistics).toEqual({ ledger: 'gathering' });
    expect(await kind(db)).toBe('r');
    await holder.query('commit');
    const report: SwitchoverReport = await handle.result();
    expect(report.outcome).toBe('done');
    expect((await handle.query(statusQuery)).statistics).toEqual({ ledger: 'done' });
    expect(await kind(db)).toBe('p');
    // The parent's own statistics were gathered before the cutover (autovacuum never gathers them).
    const inherited = await db.pool.query(`select count(*)::int as n from pg_stats where tablename = 'ledger' and inherited`);
    expect(inherited.rows[0].n).toBe(4);
  } finally {
    await holder.end();
  }
});

test('statistics that fail while approval waits: the switchover rolls back with nobody deciding, and says why', async () => {
  const db = dbs.failing;
  const before = await tableRows(db.pool, 'ledger');
  const id = uniqueId('stats-fail');
  plan.set(id, { activity: 'analyzeTable' });
  const handle = await start('failing', id);
  const f = await failureOf(handle);
  expect(f.type).toBe('Injected');
  expect(f.message).toMatch(new RegExp(`^injected failure after analyzeTable ran\\. rollback ${id}-rollback completed: ledger back to plain`));
  const s = await handle.query(statusQuery);
  expect(s.approval.state).toBe('waiting');
  expect(s.statistics?.ledger).toMatch(/^failed: .*injected failure after analyzeTable ran/);
  expect(s.rollback).toMatchObject({ state: 'completed' });
  expect(await kind(db)).toBe('r');
  expect(await tableRows(db.pool, 'ledger')).toEqual(before);
});
