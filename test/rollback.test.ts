// The rollback workflow and the switchover's compensation, on the real dev server and database:
// reject, approval timeout (rollback and fail), rollback after cutover keeping the writes made
// since, rollback twice, rollback by table list, restore from backup, a rollback that outlives
// its parent. After each, the database is the plain schema again (pg_dump equal) with every row.
import { seed, DEMO_TABLES } from '../demo/seed';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../workflows/rollback';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
let plainSchema: string;
const TABLES = DEMO_TABLES.map((t) => t.table);

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: 400, years: 1 });
  w = await startTestWorker({ default: db.url });
  plainSchema = await dump(db.url, { schemaOnly: true });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

async function rows() {
  return Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await tableRows(db.pool, t)] as const)));
}

/** Plain again: the schema is exactly the pre-switchover one and no claim is left. */
async function expectPlain() {
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plainSchema);
  const claims = await db.pool.query(`select count(*)::int as n from partition_switchover.claims`);
  expect(claims.rows[0].n).toBe(0);
}

function start(input: Record<string, unknown>, prefix: string) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(prefix),
    args: [{ tables: DEMO_TABLES, batchSize: 100, ...input }],
  });
}

async function awaitingApproval(handle: Awaited<ReturnType<typeof start>>) {
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');
}

async function rollback(args: Record<string, unknown>, prefix = 'rb'): Promise<RollbackReport> {
  return w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId(prefix), args: [args] });
}

test('reject: the rollback child runs and the tables are plain again with all rows', async () => {
  const before = await rows();
  const handle = await start({}, 'reject');
  await awaitingApproval(handle);
  await handle.signal(rejectSignal, { by: 'bob', reason: 'not today' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('rejected');
  expect(report.approval).toMatchObject({ state: 'rejected', by: 'bob', reason: 'not today' });
  expect(report.rollback).toMatchObject({ ok: true, workflowId: `${handle.workflowId}-rollback` });
  expect(report.rollback!.tables.map((t) => [t.table, t.from]).sort()).toEqual(TABLES.map((t) => [t, 'prepared']).sort());
  const child = await w.client.workflow.getHandle(`${handle.workflowId}-rollback`).describe();
  expect(child.status.name).toBe('COMPLETED');
  expect((await handle.query(statusQuery)).phase).toBe('rolled_back');
  await expectPlain();
  expect(await rows()).toEqual(before);
});

test('approval timeout with onTimeout "rollback" (the default): rolled back, outcome timed_out', async () => {
  const before = await rows();
  const handle = await start({ approval: { timeout: '3s' } }, 'timeout-rb');
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('timed_out');
  expect(report.approval.state).toBe('timed_out');
  expect(report.rollback?.ok).toBe(true);
  await expectPlain();
  expect(await rows()).toEqual(before);
});

test('approval timeout with onTimeout "fail": FAILED, left in place as the message says; a rollback by table list then restores', async () => {
  const before = await rows();
  const handle = await start({ approval: { timeout: '3s', onTimeout: 'fail' } }, 'timeout-fail');
  const f = await failureOf(handle);
  expect(f.type).toBe('ApprovalTimedOut');
  expect(f.message).toMatch(/nobody approved within 3s; the switchover stopped before cutover/);
  expect(f.message).toMatch(/revenues_partitioned, expenses_partitioned, daily_cash_balances_partitioned are still in place/);
  // Nothing rolled back: no child, triggers and partitioned copies still there.
  await expect(w.client.workflow.getHandle(`${handle.workflowId}-rollback`).describe()).rejects.toThrow();
  const left = await db.pool.query(`select count(*)::int as n from pg_trigger where tgname = 'ps_dual_write'`);
  expect(left.rows[0].n).toBe(3);

  const rb = await rollback({ tables: DEMO_TABLES }, 'rb-tables');
  expect(rb.tables.map((t) => t.from)).toEqual(['prepared', 'prepared', 'prepared']);
  expect(rb.nothingToDo).toEqual([]);
  await expectPlain();
  expect(await rows()).toEqual(before);
});

test('rollback after cutover keeps every write made since; running it twice ends in the same state', async () => {
  const handle = await start({ approval: { required: false } }, 'cutover');
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  // Writes on the partitioned tables: insert, update, key-moving update, delete.
  await db.pool.query(`
    insert into revenues (organization_id, property_id, occurred_at, amount_cents, category)
      values (1, 1, now(), 12345, 'spa'), (1, 2, now() + interval '2 months', 777, 'rooms');
    update revenues set amount_cents = amount_cents + 1 where id in (select id from revenues order by id limit 10);
    update revenues set occurred_at = occurred_at - interval '40 days' where id = (select max(id) - 5 from revenues);
    delete from revenues where id in (select id from revenues order by id desc limit 3 offset 10);
    update expenses set vendor = 'after-cutover' where id % 7 = 0;
    delete from expenses where id % 11 = 0;
    update daily_cash_balances set closing_cents = closing_cents + 5 where id % 3 = 0;`);
  const afterWrites = await rows();

  const rb = await rollback({ switchoverWorkflowId: handle.workflowId });
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover', 'cutover', 'cutover']);
  await expectPlain();
  expect(await rows()).toEqual(afterWrites);
  // The sequence is the plain table's again and keeps counting past the writes.
  const next = await db.pool.query(
    `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category) values (1, 1, now(), 1, 'other') returning id`,
  );
  expect(Number(next.rows[0].id)).toBeGreaterThan(Math.max(...afterWrites.revenues.map((r) => Number(/^\((\d+),/.exec(r)![1]))));
  await db.pool.query(`delete from revenues where id = $1`, [next.rows[0].id]);

  const again = await rollback({ switchoverWorkflowId: handle.workflowId }, 'rb-again');
  expect(again.tables.map((t) => t.from)).toEqual(['plain', 'plain', 'plain']);
  await expectPlain();
  expect(await rows()).toEqual(afterWrites);
});

test('rollback with restoreBackup puts back the rows as they were at backup', async () => {
  const before = await rows();
  const handle = await start({ approval: { required: false } }, 'restore');
  await handle.result();
  await db.pool.query(`delete from revenues where id % 2 = 0; update expenses set amount_cents = 1`);
  const rb = await rollback({ switchoverWorkflowId: handle.workflowId, restoreBackup: true });
  expect(rb.tables.map((t) => [t.table, t.restoredRows])).toEqual([...TABLES].reverse().map((t) => [t, before[t].length]));
  await expectPlain();
  expect(await rows()).toEqual(before);
});

test('the compensation outlives its parent: parent terminated mid-rollback, the rollback still completes', async () => {
  const before = await rows();
  const handle = await start({}, 'abandon');
  await awaitingApproval(handle);
  // Hold a lock the rollback needs, so it is still running when the parent goes away.
  const blocker = await db.pool.connect();
  try {
    await blocker.query('begin');
    await blocker.query('lock table revenues in access exclusive mode');
    await handle.signal(rejectSignal, { by: 'bob' });
    const child = w.client.workflow.getHandle(`${handle.workflowId}-rollback`);
    await waitFor(async () => (await child.describe()).status.name === 'RUNNING', 'rollback child running');
    await handle.terminate('operator closed the switchover');
  } finally {
    await blocker.query('rollback');
    blocker.release();
  }
  const rb: RollbackReport = await w.client.workflow.getHandle(`${handle.workflowId}-rollback`).result();
  expect(rb.tables).toHaveLength(3);
  expect((await handle.describe()).status.name).toBe('TERMINATED');
  await expectPlain();
  expect(await rows()).toEqual(before);
});

test('a reject during the copy, with no approval step, still stops the switchover before cutover and rolls back', async () => {
  const before = await rows();
  const handle = await start({ approval: { required: false }, batchSize: 20, throttle: { pauseMs: 100 } }, 'reject-early');
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'copy', 'copy phase');
  await handle.signal(rejectSignal, { by: 'bob', reason: 'wrong day' });
  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('rejected');
  expect(report.approval).toMatchObject({ state: 'rejected', by: 'bob' });
  expect(report.rollback?.ok).toBe(true);
  expect((await handle.query(statusQuery)).ignoredSignals.join('\n')).toMatch(/approve by alice: not waiting for approval/);
  await expectPlain();
  expect(await rows()).toEqual(before);
});
