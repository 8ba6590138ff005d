// A cutover that gets through (issue 25 item 2): behind a session that holds a row lock, the
// cutover's tries fail naming it; with cutover.cancelBlockersAfter it is cancelled (or terminated
// with `terminate`), the cutover goes through, and the history and the audit table name it; a
// session of a role in protectRoles is never touched; a protected role that does not exist is refused.
import pg from 'pg';
import { approveSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { databaseAndWorker, uniqueId, waitFor, waitForPhase, type TestDb, type TestWorker, dropRoles } from './helpers';

let db: TestDb;
let w: TestWorker;
databaseAndWorker((d, x) => ((db = d), (w = x)));
const ROLE = `ps_protected_${process.pid}`;

beforeAll(async () => {
  await db.pool.query(`drop role if exists ${ROLE}; create role ${ROLE} login`);
  for (const t of ['t_plain', 't_cancel', 't_protect']) {
    await db.pool.query(`
      create table ${t} (id bigserial primary key, at timestamptz not null, v int not null);
      insert into ${t} (at, v) select now() - g * interval '1 day', g from generate_series(1, 300) g;
      grant select, update on ${t} to ${ROLE};`);
  }
});
afterAll(async () => {
  await db.pool.query(`drop owned by ${ROLE}`).catch(() => undefined);
  await dropRoles(ROLE).catch(() => undefined);
});

async function awaitingApproval(table: string, cutover: Record<string, unknown> = {}) {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(table),
    args: [{ tables: [{ table, partitionKey: 'at', interval: 'month' }], backup: 'none', cutover }],
  });
  await waitForPhase(handle, 'awaiting_approval');
  return handle;
}

/** A session that locks row `id` of `table` and then runs `then` (a long query), or stays idle in its transaction. */
async function blocker(table: string, id: number, opts: { user?: string; then?: string } = {}) {
  const url = new URL(db.url);
  if (opts.user) url.username = opts.user;
  const c = new pg.Client({ connectionString: url.toString(), application_name: 'nightly-report' });
  c.on('error', () => undefined);
  await c.connect();
  const pid = Number((await c.query('select pg_backend_pid() as p')).rows[0].p);
  await c.query('begin');
  await c.query(`update ${table} set v = v + 1 where id = $1`, [id]);
  const running = opts.then
    ? c.query(opts.then).then(
        () => null,
        (err: { code?: string }) => err.code ?? 'error',
      )
    : null;
  return { c, pid, running };
}

const alive = async (pid: number) => (await db.pool.query('select state from pg_stat_activity where pid = $1', [pid])).rows[0]?.state as string | undefined;
const pendingFailure = async (h: Awaited<ReturnType<typeof awaitingApproval>>) => (await h.describe()).raw.pendingActivities?.[0]?.lastFailure?.message ?? '';

test('without the setting: the cutover tries and says which session holds it; the session is left alone', async () => {
  const h = await awaitingApproval('t_plain');
  const b = await blocker('t_plain', 1, { then: 'select pg_sleep(120)' });
  await h.signal(approveSignal, { by: 'ops' });
  const msg = await waitFor(async () => (await pendingFailure(h)) || undefined, 'a failed cutover attempt', 60000);
  expect(msg).toMatch(/cutover of public\.t_plain could not take its lock/);
  expect(msg).toContain(`session ${b.pid} (application "nightly-report"`);
  expect(await alive(b.pid)).toBe('active');
  await db.pool.query('select pg_cancel_backend($1)', [b.pid]);
  expect(await b.running).toBe('57014');
  await b.c.query('rollback');
  await b.c.end();
  const done: SwitchoverReport = await h.result();
  expect(done.tables[0].cutover?.cancelledSessions).toBeUndefined();
});

test('cancelBlockersAfter: the long query holding a row lock is cancelled, the cutover goes through, history and audit name it', async () => {
  const h = await awaitingApproval('t_cancel', { cancelBlockersAfter: '1s' });
  const b = await blocker('t_cancel', 2, { then: 'select pg_sleep(120)' });
  await h.signal(approveSignal, { by: 'ops' });
  const done: SwitchoverReport = await h.result();
  // Cancelled by the cutover (57014: canceling statement due to user request).
  expect(await b.running).toBe('57014');
  await b.c.query('rollback');
  await b.c.end();
  const sessions = done.tables[0].cutover?.cancelledSessions ?? [];
  expect(sessions).toEqual([
    expect.objectContaining({
      pid: b.pid,
      user: 'postgres',
      application: 'nightly-report',
      state: 'active',
      how: 'cancel',
      signalled: true,
      query: 'select pg_sleep(120)',
    }),
  ]);
  expect(sessions[0].queryStart).toMatch(/^\d{4}-/);
  // In the history: the cutover activity's result.
  const results = ((await h.fetchHistory()).events ?? []).flatMap((e) =>
    (e.activityTaskCompletedEventAttributes?.result?.payloads ?? []).map((p) => Buffer.from(p.data!).toString()),
  );
  const fromHistory = results.filter((r) => r.includes('cancelledSessions')).map((r) => JSON.parse(r));
  expect(fromHistory.map((r) => [r.table, r.cancelledSessions.map((x: { pid: number }) => x.pid)])).toEqual([['t_cancel', [b.pid]]]);
  const audit = await db.pool.query(`select details from partition_switchover.audit where table_name = 't_cancel' and stage = 'CUTOVER-CANCELLED'`);
  expect(audit.rows).toHaveLength(1);
  expect(audit.rows[0].details.sessions.map((s: { pid: number }) => s.pid)).toEqual([b.pid]);
  // The table is partitioned and the row the cancelled transaction updated is unchanged.
  expect((await db.pool.query(`select relkind from pg_class where relname = 't_cancel'`)).rows[0].relkind).toBe('p');
  expect((await db.pool.query(`select v from t_cancel where id = 2`)).rows[0].v).toBe(2);
});

test('terminate and protectRoles: an idle transaction of another role is terminated, one of a protected role is not, and holds the cutover until it ends', async () => {
  const h = await awaitingApproval('t_protect', { cancelBlockersAfter: '0s', terminate: true, protectRoles: [ROLE] });
  const mine = await blocker('t_protect', 3, { user: ROLE });
  const other = await blocker('t_protect', 4);
  await h.signal(approveSignal, { by: 'ops' });
  await waitFor(async () => (await alive(other.pid)) === undefined, 'the unprotected session terminated', 30000);
  let last = '';
  const msg = await waitFor(
    async () => {
      last = await pendingFailure(h);
      if (!last.includes(`session ${mine.pid}`)) return undefined;
      if (!last.includes('Meanwhile')) throw new Error(`the failure does not name the terminated session: ${last}`);
      return last;
    },
    'a try blocked by the protected session',
    60000,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}; the last failure: ${last || '(none)'}`);
  });
  expect(msg).toMatch(
    new RegExp(`Meanwhile \\(cutover.cancelBlockersAfter\\): session ${other.pid} \\(user postgres, application "nightly-report", idle in transaction`),
  );
  expect(msg).toContain('terminated');
  expect(await alive(mine.pid)).toBe('idle in transaction');
  expect((await db.pool.query('select usename from pg_stat_activity where pid = $1', [mine.pid])).rows[0].usename).toBe(ROLE);
  await mine.c.query('commit');
  await mine.c.end();
  await other.c.end().catch(() => undefined);
  const done: SwitchoverReport = await h.result();
  const sessions = done.tables[0].cutover?.cancelledSessions ?? [];
  expect(sessions.map((s) => [s.pid, s.how])).toEqual([[other.pid, 'terminate']]);
  expect((await db.pool.query(`select v from t_protect where id = 3`)).rows[0].v).toBe(4);
});

test('a protected role that does not exist is refused at preflight, nothing made', async () => {
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('t-missing-role'),
    args: [{ tables: [{ table: 't_plain', partitionKey: 'at', interval: 'month' }], cutover: { protectRoles: ['no_such_role_x'] } }],
  });
  await expect(h.result()).rejects.toThrow();
  const d = await h.describe();
  expect(d.status.name).toBe('FAILED');
  const history = JSON.stringify((await h.fetchHistory()).events);
  expect(history).toContain('cutover.protectRoles names no_such_role_x, which no role on this server is called');
});
