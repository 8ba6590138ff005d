// Verification that cannot be fooled either way (issue 21, items 1, 2, 7, 8), on the real dev
// server and real databases: the change log compared page by page with an id's keys on two pages
// (no false difference, a real one still found); writes behind the triggers (replica sessions, a
// trigger disabled for a while, statements on the partitioned copy itself) mirrored or caught by
// the default verification; while approval waits the written rows are compared and their log
// entries forgotten; the cutover compares only what came since; live writers over many pages.
import pg from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { seed } from '../demo/seed';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared';
import type { TablePlan } from '../src/types';
import type { SwitchoverReport } from '../workflows/switchover';
import type { Activities } from '../activities';
import { compareLogged, type Compared } from '../activities/changed';
import { databasesAndWorker, tableRows, uniqueId, waitFor, waitForPhase, type TestDb } from './helpers';
import { failureOf } from './failure-helpers';

const REVENUES = [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }];
const NAMES = [
  'pages',
  'replica',
  'direct',
  'partition_direct',
  'disabled',
  'noop',
  'waiting',
  'waiting_replay',
  'since',
  'since_direct',
  'since_differ',
  'live',
] as const;

/** Holds the next verifyTable of a database until opened (between the copy and verification). */
const gates = new Map<string, { reached: () => void; opened: Promise<void> }>();
function gate(database: string) {
  let reached!: () => void;
  let open!: () => void;
  const wasReached = new Promise<void>((r) => (reached = r));
  gates.set(database, { reached, opened: new Promise<void>((r) => (open = r)) });
  return { reached: wasReached, open };
}
function gated(acts: Activities): Activities {
  return {
    ...acts,
    verifyTable: async (...args) => {
      const g = gates.get(args[0]);
      if (g) {
        gates.delete(args[0]);
        g.reached();
        await g.opened;
      }
      return acts.verifyTable(...args);
    },
  };
}

const env = databasesAndWorker(NAMES, (db, name) => seed(db.pool, { rows: name === 'live' ? 20000 : 1500, years: 2 }), { wrapActivities: gated });
const dbs = env.dbs;

const one = async (d: TestDb, text: string, params: unknown[] = []) => (await d.pool.query(text, params)).rows[0];

function start(database: string, extra: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  return env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId(database),
    args: [{ tables: REVENUES, database, batchSize: 500, backup: 'none', ...extra }],
  });
}

/** The live table after cutover equals `<table>_legacy`, row for row. */
async function sameAfterCutover(d: TestDb) {
  const [a, b] = [await tableRows(d.pool, 'revenues'), await tableRows(d.pool, 'revenues_legacy')];
  expect(a.length).toBeGreaterThan(0);
  expect(a).toEqual(b);
}

/** compareLogged as the activities run it (it heartbeats), on a connection of the test's own. */
async function compare(d: TestDb, tp: TablePlan, pageSize: number): Promise<Compared> {
  const c = await d.pool.connect();
  try {
    return (await new MockActivityEnvironment().run(() => compareLogged(c, tp, '0', pageSize))) as Compared;
  } finally {
    c.release();
  }
}

test("a page end between an id's logged keys: no false difference on any page size, and a real difference is still found", async () => {
  const d = dbs.pages;
  const handle = await start('pages', { approval: { verifyEvery: '1h' } });
  const status = await waitForPhase(handle, 'awaiting_approval');
  const tp = status.plan!.tables[0];
  // Written through the triggers after verification: moves across months (old and new key logged
  // one after the other), updates, a move back, a delete, an insert.
  for (let id = 10; id < 20; id++) await d.pool.query(`update revenues set occurred_at = occurred_at + interval '35 days' where id = $1`, [id]);
  await d.pool.query(`update revenues set amount_cents = amount_cents + 3 where id between 20 and 29`);
  await d.pool.query(`update revenues set occurred_at = occurred_at - interval '70 days', amount_cents = 1 where id = 12`);
  await d.pool.query(`delete from revenues where id = 30`);
  await d.pool.query(`insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
    select organization_id, property_id, now(), 5, category, status, 'late' from revenues where id = 31`);
  for (const pageSize of [1, 2, 3, 7, 5000]) {
    const r = await compare(d, tp, pageSize);
    expect({ pageSize, differ: r.differ }).toEqual({ pageSize, differ: [] });
    expect(r.keys).toBeGreaterThanOrEqual(10 + 10 + 1 + 1 + 1);
  }
  // A real difference on a moved id (its row in the partitioned copy changed behind the trigger)
  // is found whichever page its keys are on.
  expect((await d.pool.query(`update revenues_partitioned set amount_cents = amount_cents + 1 where id = 15`)).rowCount).toBe(1);
  for (const pageSize of [1, 2, 5000]) expect((await compare(d, tp, pageSize)).differ).toEqual([['15']]);
  await handle.signal(rejectSignal, { by: 'test', reason: 'done' });
  await expect(handle.result()).resolves.toMatchObject({ outcome: 'rejected' });
});

test('replica sessions write through the dual-write trigger (enabled always): verification passes and the live table has their writes after cutover', async () => {
  const d = dbs.replica;
  const g = gate('replica');
  const handle = await start('replica');
  await g.reached;
  const c = await d.pool.connect();
  try {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    await c.query(`update revenues set amount_cents = 424242 where id = 100`);
    await c.query(`delete from revenues where id = 101`);
    await c.query(`insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
      select organization_id, property_id, occurred_at, 777, category, status, 'replica' from revenues where id = 102`);
    await c.query('commit');
  } finally {
    c.release();
  }
  g.open();
  const s = await waitForPhase(handle, 'awaiting_approval');
  expect(s.verification?.tables[0]).toMatchObject({ ok: true, mode: 'incremental' });
  expect(s.verification?.tables[0].escalated).toBeUndefined();
  await handle.signal(approveSignal, { by: 'test' });
  await handle.result();
  expect(
    await one(
      d,
      `select (select amount_cents from revenues where id = 100) as updated, (select count(*)::int from revenues where id = 101) as deleted,
    (select count(*)::int from revenues where description = 'replica' and amount_cents = 777) as inserted`,
    ),
  ).toEqual({ updated: '424242', deleted: 0, inserted: 1 });
  await sameAfterCutover(d);
});

test.each([
  [
    'direct',
    `update revenues_partitioned set amount_cents = amount_cents + 1 where id = 1234`,
    /1 statement wrote revenues_partitioned directly, not through the dual-write trigger \(UPDATE by postgres at .*UTC: update revenues_partitioned set amount_cents/,
  ],
  [
    'disabled',
    `alter table revenues disable trigger ps_dual_write; update revenues set amount_cents = amount_cents + 1 where id = 1234; alter table revenues enable trigger ps_dual_write`,
    /the dual-write trigger "ps_dual_write" on public\.revenues was disabled, enabled or replaced since it was installed \(it is enabled for origin sessions only now\)/,
  ],
])('behind the triggers (%s): the default verification compares every row and fails naming the id and why', async (database, sql, why) => {
  const d = dbs[database];
  const g = gate(database);
  const handle = await start(database);
  await g.reached;
  await d.pool.query(sql);
  g.open();
  const f = await failureOf(handle);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(/verification failed: revenues differs in \d{4}-\d{2}-01 \(ids 1234\) \(every row compared: /);
  expect(f.message).toMatch(why);
  expect(f.message).toMatch(/rollback .* completed/);
  expect(await one(d, `select to_regclass('revenues_partitioned') as p`)).toEqual({ p: null });
});

test('a statement on one partition of the partitioned copy is seen too: every row compared, the id named; cleanup leaves no guard', async () => {
  const d = dbs.partition_direct;
  const g = gate('partition_direct');
  const handle = await start('partition_direct');
  await g.reached;
  const part = (await one(d, `select tableoid::regclass::text as p from revenues_partitioned where id = 321`)).p as string;
  expect((await d.pool.query(`update ${part} set amount_cents = amount_cents + 5 where id = 321`)).rowCount).toBe(1);
  g.open();
  const f = await failureOf(handle);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(
    new RegExp(
      `differs in \\d{4}-\\d{2}-01 \\(ids 321\\) \\(every row compared: 1 statement wrote revenues_partitioned directly, not through the dual-write trigger \\(UPDATE by postgres at [^)]*: update ${part} set`,
    ),
  );
  // A switchover that goes through: after cleanup no partition keeps a guard of ours.
  const done = await start('partition_direct', { approval: { required: false } });
  expect(((await done.result()) as SwitchoverReport).outcome).toBe('done');
  expect((await one(d, `select count(*)::int as n from pg_trigger where tgname = 'ps_direct_write'`)).n).toBeGreaterThan(20);
  await env.w.client.workflow.execute('cleanup', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('clean'),
    args: [{ database: 'partition_direct', tables: ['revenues'] }],
  });
  expect(await one(d, `select count(*)::int as n from pg_trigger where tgname = 'ps_direct_write'`)).toEqual({ n: 0 });
});

test('a statement on the partitioned copy that changes nothing: every row compared, no difference reported, the switchover goes on', async () => {
  const d = dbs.noop;
  const g = gate('noop');
  const handle = await start('noop');
  await g.reached;
  expect((await d.pool.query(`update revenues_partitioned set amount_cents = amount_cents where id = 77`)).rowCount).toBe(1);
  g.open();
  const s = await waitForPhase(handle, 'awaiting_approval');
  expect(s.verification?.tables[0]).toMatchObject({ ok: true, mode: 'full' });
  expect(s.verification?.tables[0].escalated?.join()).toMatch(/1 statement wrote revenues_partitioned directly/);
  // Accounted for: the records are gone, so the cutover does not refuse over them.
  expect(await one(d, `select count(*)::int as n from partition_switchover.direct_writes`)).toEqual({ n: 0 });
  await handle.signal(approveSignal, { by: 'test' });
  await handle.result();
  await sameAfterCutover(d);
});

test('while approval waits the written rows are compared and their log entries forgotten (status shows it); a direct write then fails at once', async () => {
  const d = dbs.waiting;
  const handle = await start('waiting', { approval: { verifyEvery: '1s' } });
  await waitForPhase(handle, 'awaiting_approval');
  // Verification forgot what it compared.
  expect(await one(d, `select count(*)::int as n from partition_switchover.changed_keys`)).toEqual({ n: 0 });
  await d.pool.query(`update revenues set amount_cents = amount_cents + 1 where id between 1 and 60`);
  const written = await waitFor(async () => {
    const s = await handle.query(statusQuery);
    const x = s.written?.revenues;
    return x && x.keys >= 60 && x.logRows === 0 ? x : undefined;
  }, 'a comparison of the 60 written rows');
  expect(written).toMatchObject({ ok: true, changes: [] });
  expect(await one(d, `select count(*)::int as n from partition_switchover.changed_keys`)).toEqual({ n: 0 });
  await d.pool.query(`delete from revenues_partitioned where id = 1400`);
  const f = await failureOf(handle);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(
    /verification failed while waiting for approval: revenues: 1 statement wrote revenues_partitioned directly, not through the dual-write trigger \(DELETE by postgres/,
  );
  expect(await one(d, `select to_regclass('revenues_partitioned') as p`)).toEqual({ p: null });
});

test('a switchover that compared written rows while it waited, then cut over, replays from its history (deterministic)', async () => {
  const d = dbs.waiting_replay;
  const handle = await start('waiting_replay', { approval: { verifyEvery: '1s' } });
  await waitForPhase(handle, 'awaiting_approval');
  await d.pool.query(`update revenues set amount_cents = amount_cents + 1 where id between 1 and 5`);
  await waitFor(async () => ((await handle.query(statusQuery)).written?.revenues?.keys ?? 0) >= 5, 'a comparison of the 5 written rows');
  await handle.signal(approveSignal, { by: 'test' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  const history = await handle.fetchHistory();
  expect(history.events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'verifyWritten').length).toBeGreaterThanOrEqual(1);
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.PS_TEST_WORKFLOW_BUNDLE! }, replayName: 'waiting' }, history);
  await sameAfterCutover(d);
});

test('the cutover compares only the rows written since verification', async () => {
  const d = dbs.since;
  const handle = await start('since', { approval: { verifyEvery: '1h' } });
  await waitForPhase(handle, 'awaiting_approval');
  await d.pool.query(`update revenues set amount_cents = amount_cents + 1 where id between 200 and 206`);
  await handle.signal(approveSignal, { by: 'test' });
  const report = (await handle.result()) as SwitchoverReport;
  expect(report.tables[0].cutover).toMatchObject({ keysComparedSinceVerification: 7 });
  await sameAfterCutover(d);
  // Nothing of the table is left in the log after cutover.
  expect(await one(d, `select count(*)::int as n from partition_switchover.changed_keys`)).toEqual({ n: 0 });
});

test('a direct write to the partitioned copy after verification: the cutover refuses, naming it, and the switchover rolls back', async () => {
  const d = dbs.since_direct;
  const handle = await start('since_direct', { approval: { verifyEvery: '1h' } });
  await waitForPhase(handle, 'awaiting_approval');
  await d.pool.query(`update revenues_partitioned set amount_cents = 0 where id = 500`);
  await handle.signal(approveSignal, { by: 'test' });
  const f = await failureOf(handle);
  expect(f.type).toBe('StateConflict');
  expect(f.message).toMatch(
    /cutover of public\.revenues refused: since verification, 1 statement wrote revenues_partitioned directly, not through the dual-write trigger \(UPDATE by postgres/,
  );
  expect(await one(d, `select (select relkind::text from pg_class where oid = 'revenues'::regclass) as k, to_regclass('revenues_partitioned') as p`)).toEqual({
    k: 'r',
    p: null,
  });
});

test('a row written since verification changed again in its partition: the cutover refuses naming the statement and the id', async () => {
  const d = dbs.since_differ;
  const handle = await start('since_differ', { approval: { verifyEvery: '1h' } });
  await waitForPhase(handle, 'awaiting_approval');
  await d.pool.query(`update revenues set amount_cents = 11 where id in (300, 301)`);
  const part = (await one(d, `select tableoid::regclass::text as p from revenues_partitioned where id = 300`)).p as string;
  expect((await d.pool.query(`update ${part} set amount_cents = 12 where id = 300`)).rowCount).toBe(1);
  await handle.signal(approveSignal, { by: 'test' });
  const f = await failureOf(handle);
  expect(f.type).toBe('StateConflict');
  expect(f.message).toMatch(
    /cutover of public\.revenues refused: since verification, 1 statement wrote revenues_partitioned directly, not through the dual-write trigger \(UPDATE by postgres at [^)]*: update revenues_p\d{6} set amount_cents = 12 where id = 300\); rows written since verification differ between revenues and revenues_partitioned: ids 300 \(2 logged keys compared\)\. Nothing was changed/,
  );
  expect(
    await one(
      d,
      `select (select relkind::text from pg_class where oid = 'revenues'::regclass) as k, (select amount_cents::int from revenues where id = 300) as a`,
    ),
  ).toEqual({ k: 'r', a: 11 });
});

/**
 * Two application writers at full speed on revenues: single-row inserts, updates, moves of the
 * partition key across months (both ways), deletes, and transactions of an update, a 20 ms pause
 * and an insert. Returns stop(), which resolves to the failed writes.
 */
function writers(d: TestDb, maxId: number) {
  let running = true;
  const failed: string[] = [];
  const one = async (seed: number) => {
    const c = new pg.Client({ connectionString: d.url, application_name: 'ps-test-writer' });
    await c.connect();
    let x = seed;
    const rnd = (n: number) => ((x = (x * 1103515245 + 12345) % 2147483648), x % n);
    let ops = 0;
    const until = Date.now() + 120_000;
    while (running && Date.now() < until) {
      const id = 1 + rnd(maxId);
      const op = rnd(6);
      try {
        if (op === 0) {
          await c.query(`insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
            select organization_id, property_id, now() - (random() * interval '600 days'), 1, category, status, 'w' from revenues where id <= 100 order by id limit 1`);
        } else if (op === 1) await c.query(`update revenues set amount_cents = amount_cents + 1 where id = $1`, [id]);
        else if (op === 2) await c.query(`update revenues set occurred_at = occurred_at + interval '35 days' where id = $1`, [id]);
        else if (op === 3) await c.query(`update revenues set occurred_at = occurred_at - interval '40 days' where id = $1`, [id]);
        else if (op === 4) await c.query(`delete from revenues where id = $1`, [id]);
        else {
          await c.query('begin');
          await c.query(`update revenues set amount_cents = amount_cents + 2, occurred_at = occurred_at + interval '31 days' where id = $1`, [id]);
          await new Promise((r) => setTimeout(r, 20));
          await c.query(
            `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
            select organization_id, property_id, occurred_at, 2, category, status, 'tx' from revenues where id = $1`,
            [1 + rnd(100)],
          );
          await c.query('commit');
        }
        ops++;
      } catch (err) {
        await c.query('rollback').catch(() => undefined);
        // After cutover, a row moved by the other writer while this one waited for it: the
        // application retries, as the README says (not ours: a partitioned table's own).
        if ((err as { code?: string }).code !== '40001') failed.push((err as Error).message);
      }
    }
    await c.end();
    return ops;
  };
  const runs = [one(7), one(11)];
  return {
    async stop() {
      running = false;
      const ops = await Promise.all(runs);
      return { failed, ops: ops.reduce((a, b) => a + b, 0) };
    },
  };
}

test('two writers at full speed with key moves over a change log of many pages: verification passes, zero failed writes, zero drift', async () => {
  const d = dbs.live;
  const before = process.env.PS_CHANGE_LOG_PAGE_KEYS;
  process.env.PS_CHANGE_LOG_PAGE_KEYS = '50';
  try {
    const load = writers(d, 20000);
    let report: SwitchoverReport;
    try {
      const handle = await start('live', { approval: { required: false }, batchSize: 1000 });
      report = (await handle.result()) as SwitchoverReport;
      // A moment of writes after cutover too (through the mirror).
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      var { failed, ops } = await load.stop(); // eslint-disable-line no-var
    }
    expect(failed).toEqual([]);
    expect(ops).toBeGreaterThan(300);
    const v = report.tables[0].verification!;
    expect(v).toMatchObject({ ok: true, mode: 'incremental' });
    // At least three pages of the log (50 keys each here) compared at verification.
    expect(v.keysChecked).toBeGreaterThanOrEqual(150);
    await sameAfterCutover(d);
  } finally {
    if (before === undefined) delete process.env.PS_CHANGE_LOG_PAGE_KEYS;
    else process.env.PS_CHANGE_LOG_PAGE_KEYS = before;
  }
});
