// Cutover windows (issue 25 item 1), with windows of seconds: an approval outside the window is
// kept and the cutover waits for it (phase awaiting_window, when in the operator's time zone); a
// cutover that cannot get its lock before the window closes waits for the next one; retuneCutover
// and cutoverNow while it waits (approvers only); a reject while it waits rolls back.
import pg from 'pg';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { approveSignal, cutoverNowUpdate, rejectSignal, retuneCutoverUpdate, statusQuery } from '../src/shared';
import type { SwitchoverStatus } from '../src/status';
import type { SwitchoverReport } from '../workflows/switchover';
import { databaseAndWorker, temporalCli, uniqueId, waitFor, waitForPhase, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
databaseAndWorker((d, x) => ((db = d), (w = x)));

beforeAll(async () => {
  for (const t of ['w_notbefore', 'w_window', 'w_now', 'w_closed', 'w_reject']) {
    await db.pool.query(`
      create table ${t} (id bigserial primary key, at timestamptz not null, v int not null);
      insert into ${t} (at, v) select now() - g * interval '1 day', g from generate_series(1, 200) g;`);
  }
});

/** UTC wall time `ms` from now, "HH:MM:SS". */
const wall = (ms: number) => new Date(Date.now() + ms).toISOString().slice(11, 19);

async function approved(table: string, cutover: Record<string, unknown>): Promise<WorkflowHandle> {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(table),
    args: [{ tables: [{ table, partitionKey: 'at', interval: 'month' }], backup: 'none', approval: { approvers: ['alice'] }, cutover }],
  });
  await waitForPhase(handle, 'awaiting_approval');
  await handle.signal(approveSignal, { by: 'alice' });
  return handle;
}

const status = (h: WorkflowHandle) => h.query(statusQuery) as Promise<SwitchoverStatus>;
const isPartitioned = async (t: string) => (await db.pool.query(`select relkind from pg_class where relname = $1`, [t])).rows[0].relkind === 'p';

test('notBefore: approved before it, the cutover waits in awaiting_window and runs after it', async () => {
  const notBefore = new Date(Date.now() + 15000).toISOString();
  const h = await approved('w_notbefore', { notBefore });
  const s = await waitForPhase(h, 'awaiting_window');
  expect(s.cutoverWindow).toMatchObject({ state: 'waiting', opensAt: notBefore, closesAt: null, notBefore, missed: 0 });
  expect(s.approval).toMatchObject({ state: 'approved', by: 'alice' });
  expect(await isPartitioned('w_notbefore')).toBe(false);
  const done: SwitchoverReport = await h.result();
  expect(done.outcome).toBe('done');
  expect(Date.parse(done.tables[0].cutover!.at)).toBeGreaterThanOrEqual(Date.parse(notBefore));
  expect(await isPartitioned('w_notbefore')).toBe(true);
});

test('a window of seconds in a time zone: waits for it, says when in local time, cuts over inside it', async () => {
  // Tokyo has no daylight saving: UTC+9.
  const open = Date.now() + 15000;
  const local = (t: number) => new Date(t + 9 * 3600_000).toISOString().slice(11, 19);
  const h = await approved('w_window', { window: { start: local(open), end: local(open + 120000), timeZone: 'Asia/Tokyo' } });
  const s = await waitForPhase(h, 'awaiting_window');
  expect(s.cutoverWindow!.opensLocal).toMatch(new RegExp(`${local(open)} Asia/Tokyo$`));
  expect(Math.abs(Date.parse(s.cutoverWindow!.opensAt) - open)).toBeLessThan(1000);
  const meta = JSON.parse(await temporalCli(['workflow', 'metadata', '--workflow-id', h.workflowId, '--output', 'json'])).queryResult[0];
  expect(meta.currentDetails).toContain('### Waiting for the cutover window');
  expect(meta.currentDetails).toContain(`until ${s.cutoverWindow!.opensLocal}`);
  expect(meta.currentDetails).toContain('--name cutoverNow');
  const done: SwitchoverReport = await h.result();
  const at = Date.parse(done.tables[0].cutover!.at);
  expect(at).toBeGreaterThanOrEqual(open - 1000);
  expect(at).toBeLessThan(open + 120000);
});

test('cutoverNow and retuneCutover: refused when not an approver or with a bad window, accepted from alice', async () => {
  const h = await approved('w_now', { window: { start: wall(3_600_000), end: wall(3_700_000), timeZone: 'UTC' } });
  await waitForPhase(h, 'awaiting_window');
  await expect(h.executeUpdate(cutoverNowUpdate, { args: [{ by: 'mallory' }] })).rejects.toThrow(WorkflowUpdateFailedError);
  const bad = await h
    .executeUpdate(retuneCutoverUpdate, { args: [{ by: 'alice', window: { start: '02:00', end: '04:00', timeZone: 'Mars/Olympus' } }] })
    .catch((e) => e);
  expect(String(bad.cause?.message ?? bad.message)).toMatch(/window\.timeZone: must be an IANA time zone/);
  const retuned = await h.executeUpdate(retuneCutoverUpdate, { args: [{ by: 'alice', notBefore: new Date(Date.now() + 7_200_000).toISOString() }] });
  expect(retuned.changes.map((c) => c.by)).toEqual(['alice']);
  const s = await waitFor(async () => ((await status(h)).cutoverWindow!.changes.length === 1 ? status(h) : undefined), 'the retune applied');
  expect(s.phase).toBe('awaiting_window');
  await h.executeUpdate(cutoverNowUpdate, { args: [{ by: 'alice', comment: 'quiet now' }] });
  const done: SwitchoverReport = await h.result();
  expect(done.outcome).toBe('done');
  expect(await isPartitioned('w_now')).toBe(true);
  // Too late now: refused.
  await expect(h.executeUpdate(cutoverNowUpdate, { args: [{ by: 'alice' }] })).rejects.toThrow();
});

test('a window that closes before the cutover gets its lock: it waits for the next window', async () => {
  const h = await approved('w_closed', { window: { start: wall(12000), end: wall(22000), timeZone: 'UTC' } });
  await waitForPhase(h, 'awaiting_window');
  const blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
  await blocker.query('begin');
  await blocker.query('update w_closed set v = v + 1 where id = 1');
  try {
    await waitForPhase(h, 'cutover', 30000).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify({ ...(await status(h)), plan: undefined, stages: undefined })}`);
    });
    // Closed on it: waiting again, for tomorrow's window.
    const s = await waitFor(
      async () => {
        const x = await status(h);
        return x.phase === 'awaiting_window' && x.cutoverWindow!.missed === 1 ? x : undefined;
      },
      'the next window',
      40000,
    );
    expect(Date.parse(s.cutoverWindow!.opensAt) - Date.now()).toBeGreaterThan(20 * 3600_000);
    expect(await isPartitioned('w_closed')).toBe(false);
  } finally {
    await blocker.query('rollback');
    await blocker.end();
  }
  await h.executeUpdate(cutoverNowUpdate, { args: [{ by: 'alice' }] });
  const done: SwitchoverReport = await h.result();
  expect(done.outcome).toBe('done');
  expect((await status(h)).cutoverWindow!.missed).toBe(1);
});

test('a reject while the cutover waits for its window rolls back', async () => {
  const h = await approved('w_reject', { notBefore: new Date(Date.now() + 3_600_000).toISOString() });
  await waitForPhase(h, 'awaiting_window');
  await h.signal(rejectSignal, { by: 'alice', reason: 'not this week' });
  const done: SwitchoverReport = await h.result();
  expect(done.outcome).toBe('rejected');
  expect(done.rollback?.ok).toBe(true);
  expect((await db.pool.query(`select count(*)::int as n from pg_class where relname = 'w_reject_partitioned'`)).rows[0].n).toBe(0);
});
