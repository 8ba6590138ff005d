// Issue 21 item 10: the attach cutoff as a deadline. `status` shows the time left until the
// application's writes reach the cutoff; a cutover with less than the margin left refuses before
// its lock (StateConflict, naming the cutoff), and the switchover rolls back, dropping the CHECK.
import { Context } from '@temporalio/activity';
import type { Activities } from '../activities';
import type { Plan, TablePlan } from '../src/types';
import { CUTOFF_MARGIN_MS, cutoffDeadlineMs, cutoffStatus, humanDuration } from '../src/cutoff';
import { approveSignal, pauseUpdate, statusQuery } from '../src/shared';
import { failureOf, injectAfter, type Injection } from './failure-helpers';
import { createTestDb, startTestWorker, tableRows, temporalCli, uniqueId, waitForPhase, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
const inject = new Map<string, Injection>();
/** Per workflow id: how the preflight's plan is changed before the workflow records it. */
const replan = new Map<string, (plan: Plan) => void>();

beforeAll(async () => {
  db = await createTestDb('cutoff_t');
  const wrap = (acts: Activities): Activities => {
    const wrapped = injectAfter(inject)(acts);
    return {
      ...wrapped,
      async preflight(input) {
        const plan = await wrapped.preflight(input);
        replan.get(Context.current().info.workflowExecution?.workflowId ?? '')?.(plan);
        return plan;
      },
    };
  };
  w = await startTestWorker({ default: db.url }, undefined, { wrapActivities: wrap });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

test('deadline, time left and durations', () => {
  expect(cutoffDeadlineMs({ cutoff: '2027-01-01', aheadDays: 0 })).toBe(Date.parse('2027-01-01T00:00:00Z'));
  expect(cutoffDeadlineMs({ cutoff: '2027-01-01', aheadDays: 3 })).toBe(Date.parse('2026-12-29T00:00:00Z'));
  expect(cutoffStatus({ cutoff: '2027-01-01', aheadDays: 0 }, Date.parse('2026-12-30T21:30:00Z'))).toEqual({
    cutoff: '2027-01-01',
    deadline: '2027-01-01T00:00:00.000Z',
    leftSeconds: 95400,
    left: '1d 2h',
  });
  expect(cutoffStatus({ cutoff: '2027-01-01', aheadDays: 0 }, Date.parse('2027-01-01T02:05:00Z')).left).toBe('passed 2h 5m ago');
  expect(humanDuration(CUTOFF_MARGIN_MS)).toBe('1h 0m');
  expect(humanDuration(12 * 60000)).toBe('12m');
});

test('status shows the time left before the cutoff; a cutover with less than the margin left refuses before its lock and the switchover rolls back', async () => {
  await db.pool.query(`
    create table bookings (id bigserial primary key, at timestamptz not null, v int not null);
    insert into bookings (at, v) select now() - (g % 60) * interval '1 day', g from generate_series(1, 300) g;
  `);
  const before = await tableRows(db.pool, 'bookings');
  const id = uniqueId('cutoff');
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [
      { strategy: 'attach', backup: 'none', tables: [{ table: 'bookings', partitionKey: 'at', interval: 'day' }], approval: { required: true, timeout: '1h' } },
    ],
  });
  const s = await waitForPhase(h, 'awaiting_approval');
  const a = s.plan!.tables[0].attach!;
  const c = s.cutoffs!.bookings;
  expect(c.cutoff).toBe(a.cutoff);
  expect(c.deadline).toBe(new Date(cutoffDeadlineMs(a)).toISOString());
  // As of the query (the workflow's clock, at most its last task behind).
  expect(Math.abs(c.leftSeconds - (cutoffDeadlineMs(a) - Date.now()) / 1000)).toBeLessThan(120);
  expect(c.leftSeconds).toBeGreaterThan(CUTOFF_MARGIN_MS / 1000);
  // The operator's details say it too.
  const meta = JSON.parse(await temporalCli(['workflow', 'metadata', '--workflow-id', id, '--output', 'json'])).queryResult[0];
  expect(meta.currentDetails).toContain(
    `Attach cutoff of bookings: ${a.cutoff}; the application's writes reach it at ${c.deadline}, and the switchover stops (and rolls back) 1h 0m before that if it has not cut over`,
  );

  // The switchover's window has run out (as if the cutover window or a pause had held it past the
  // cutoff): the cutover sees yesterday's cutoff.
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  inject.set(id, {
    activity: 'attachCutover',
    before: true,
    action: async (args) => {
      const tp = args[1] as TablePlan;
      tp.attach!.cutoff = yesterday;
      tp.attach!.aheadDays = 0;
    },
  });
  await h.signal(approveSignal, { by: 'alice' });
  const f = await failureOf(h);
  const chain = f.chain.join('\n');
  expect(chain).toMatch(
    new RegExp(
      `cutover of public\\.bookings refused: the attach cutoff ${yesterday} has passed 1d \\d+h ago \\(at ${yesterday}T00:00:00\\.000Z\\), less than the 1h 0m margin: until cutover every write of at at or after ${yesterday} fails the CHECK bookings_ps_before_cutoff\\. Nothing was changed by the cutover; the switchover rolls back \\(which drops the CHECK\\)\\. Start again: preflight picks a later cutoff`,
    ),
  );
  // Rolled back: plain, every row, no CHECK or index of ours, no parent.
  expect((await db.pool.query(`select relkind::text as k from pg_class where oid = 'bookings'::regclass`)).rows[0].k).toBe('r');
  expect(await tableRows(db.pool, 'bookings')).toEqual(before);
  expect((await db.pool.query(`select conname::text as n from pg_constraint where conrelid = 'bookings'::regclass order by 1`)).rows).toEqual([
    { n: 'bookings_pkey' },
  ]);
  expect((await db.pool.query(`select to_regclass('bookings_partitioned') is null as gone`)).rows[0].gone).toBe(true);
  const end = await h.query(statusQuery);
  expect(end.cutoffs).toBeUndefined();
});

test('awaiting approval, the switchover stops an hour before the application writes reach the cutoff, and rolls back (not at the approval timeout)', async () => {
  await db.pool.query(`
    create table stays (id bigserial primary key, at timestamptz not null, v int not null);
    insert into stays (at, v) select now() - interval '10 days' - (g % 60) * interval '1 day', g from generate_series(1, 200) g;
  `);
  const before = await tableRows(db.pool, 'stays');
  const id = uniqueId('deadline');
  // As if the application wrote far ahead: its writes reach the cutoff 1 h + 15 s from now.
  replan.set(id, (plan) => {
    const a = plan.tables[0].attach!;
    a.aheadDays = (Date.parse(`${a.cutoff}T00:00:00Z`) - (Date.now() + CUTOFF_MARGIN_MS + 15000)) / 86_400_000;
  });
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [
      { strategy: 'attach', backup: 'none', tables: [{ table: 'stays', partitionKey: 'at', interval: 'month' }], approval: { required: true, timeout: '24h' } },
    ],
  });
  const s = await waitForPhase(h, 'awaiting_approval');
  expect(s.cutoffs!.stays.leftSeconds).toBeLessThanOrEqual(CUTOFF_MARGIN_MS / 1000 + 15);
  const f = await failureOf(h);
  expect(f.type).toBe('StateConflict');
  expect(f.message).toMatch(
    /^nobody approved before the attach cutoff \d{4}-\d{2}-01 of public\.stays came within 1h 0m \(the application's writes reach it at \S+\): until cutover every write of at at or after \d{4}-\d{2}-01 fails the CHECK stays_ps_before_cutoff, so the switchover stops before cutover and rolls back \(which drops the CHECK\)\. Start again \(preflight picks a later cutoff\) and approve within its window\. rollback \S+ completed: stays back to plain/,
  );
  expect((await db.pool.query(`select relkind::text as k from pg_class where oid = 'stays'::regclass`)).rows[0].k).toBe('r');
  expect(await tableRows(db.pool, 'stays')).toEqual(before);
  expect((await db.pool.query(`select conname::text as n from pg_constraint where conrelid = 'stays'::regclass order by 1`)).rows).toEqual([
    { n: 'stays_pkey' },
  ]);
}, 120000);

test('paused after approval, the switchover stops an hour before the application writes reach the cutoff, and rolls back', async () => {
  await db.pool.query(`
    create table halts (id bigserial primary key, at timestamptz not null, v int not null);
    insert into halts (at, v) select now() - interval '10 days' - (g % 60) * interval '1 day', g from generate_series(1, 200) g;
  `);
  const before = await tableRows(db.pool, 'halts');
  const id = uniqueId('paused');
  replan.set(id, (plan) => {
    const a = plan.tables[0].attach!;
    a.aheadDays = (Date.parse(`${a.cutoff}T00:00:00Z`) - (Date.now() + CUTOFF_MARGIN_MS + 30000)) / 86_400_000;
  });
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [
      { strategy: 'attach', backup: 'none', tables: [{ table: 'halts', partitionKey: 'at', interval: 'month' }], approval: { required: true, timeout: '24h' } },
    ],
  });
  await waitForPhase(h, 'awaiting_approval');
  await h.executeUpdate(pauseUpdate, { args: [{ by: 'ops', reason: 'month-end close' }] });
  await h.signal(approveSignal, { by: 'alice' });
  const f = await failureOf(h);
  expect(f.type).toBe('StateConflict');
  expect(f.message).toMatch(
    /^the switchover stayed paused before the attach cutoff \d{4}-\d{2}-01 of public\.halts came within 1h 0m \(the application's writes reach it at \S+\): until cutover every write of at at or after \d{4}-\d{2}-01 fails the CHECK halts_ps_before_cutoff, so the switchover stops before cutover and rolls back/,
  );
  expect((await db.pool.query(`select relkind::text as k from pg_class where oid = 'halts'::regclass`)).rows[0].k).toBe('r');
  expect(await tableRows(db.pool, 'halts')).toEqual(before);
  expect((await db.pool.query(`select conname::text as n from pg_constraint where conrelid = 'halts'::regclass order by 1`)).rows).toEqual([
    { n: 'halts_pkey' },
  ]);
  expect((await db.pool.query(`select to_regclass('halts_partitioned') is null as gone`)).rows[0].gone).toBe(true);
}, 120000);
