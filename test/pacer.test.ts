// The adaptive throttle's decision (activities/pacer.ts), pure; and its probe on the real database.
import pg from 'pg';
import { Pacer, probeLimit, probeMs, HOLD_MS, HOLDS_BEFORE_REBASE, REBASE_EVERY_MS, type PacerEnv } from '../activities/pacer';
import { copyGateKey, gatedEnv, oneStream } from '../activities/copy-brake';
import type { StreamControls } from '../src/status';
import { sqlFile } from '../src/db';
import { createTestDb, type TestDb } from './helpers';

function calibrated(stream: number, baselineMs: number): Pacer {
  const p = new Pacer(stream);
  (p as unknown as { baselineMs: number }).baselineMs = baselineMs;
  return p;
}

test('the limit is twice the baseline, never under baseline + 2 ms', () => {
  expect(probeLimit(4)).toBe(8);
  expect(probeLimit(0.4)).toBe(2.4);
});

test('first stream: pauses doubling from 20 ms to 1 s while over the limit, then halves the pause away', () => {
  const p = calibrated(0, 2);
  expect(p.decide(3)).toEqual({ waitMs: 0, hold: false, why: null });
  const waits = [5, 5, 5, 5, 5, 5, 5, 5].map((ms) => p.decide(ms));
  expect(waits.map((w) => w.waitMs)).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000]);
  expect(waits[0].why).toBe('slowed down, 20 ms after each batch: a probe commit takes 5 ms, over its limit of 4 ms (2 ms with the copy quiet)');
  // Never longer than the last batch took.
  expect(p.decide(5, 150).waitMs).toBe(150);
  expect(waits.every((w) => !w.hold)).toBe(true);
  const back = [1, 1, 1, 1, 1, 1, 1].map((ms) => p.decide(ms).waitMs);
  expect(back).toEqual([75, 38, 19, 10, 5, 0, 0]);
});

test('other streams hold (down to one stream) while over the limit, and go on at once when under', () => {
  const p = calibrated(1, 2);
  expect(p.decide(9)).toEqual({
    waitMs: HOLD_MS,
    hold: true,
    why: 'down to one stream: a probe commit takes 9 ms, over its limit of 4 ms (2 ms with the copy quiet)',
  });
  expect(p.decide(4.5)).toMatchObject({ hold: true });
  expect(p.decide(4)).toEqual({ waitMs: 0, hold: false, why: null });
});

test('a higher stream whose lower streams have all finished is the one stream left: it pauses like the first, never held', async () => {
  const c = {} as never;
  let i = 0;
  const probes = [1, 1, 1, 1, 1, 9, 9, 9];
  const p = new Pacer(1, async () => probes[Math.min(i++, probes.length - 1)]);
  await p.calibrate(c);
  // Streams below still copying: it holds.
  expect(await p.next(c, 300, false)).toMatchObject({ hold: true, waitMs: HOLD_MS });
  // The streams below finished: a pause no longer than its last batch, as the first stream's.
  const alone = await p.next(c, 300, true);
  expect(alone).toMatchObject({ hold: false, waitMs: 20 });
  expect(alone.why).toMatch(/^slowed down, 20 ms after each batch/);
  expect((await p.next(c, 30, true)).waitMs).toBe(30);
});

test('a probe still slow with the copy quiet moves the baseline up; another stream re-measures only after long holds', async () => {
  const fed = (xs: number[]) => {
    let i = 0;
    return async () => xs[Math.min(i++, xs.length - 1)];
  };
  const c = {} as never;
  // First stream: calibrated at 1 ms, then every probe takes 6 ms, also while the copy pauses.
  const first = new Pacer(0, fed([1, 1, 1, 1, 1, 6]));
  await first.calibrate(c);
  expect((await first.next(c)).why).toMatch(/^slowed down, 20 ms after each batch: a probe commit takes 6 ms, over its limit of 3 ms/);
  expect(await first.afterWait(c)).toBe(6);
  expect(first.baseline).toBe(6);
  expect(await first.next(c)).toEqual({ waitMs: 0, hold: false, why: null }); // 6 ms is normal now
  // Back to fast with the copy quiet: the copy was the cause, the baseline stays.
  const fast = new Pacer(0, fed([1, 1, 1, 1, 1, 6, 1]));
  await fast.calibrate(c);
  await fast.next(c);
  expect(await fast.afterWait(c)).toBeNull();
  expect(fast.baseline).toBe(1);
  // Another stream: holds HOLDS_BEFORE_REBASE times before it measures again.
  const other = new Pacer(1, fed([1, 1, 1, 1, 1, 6]));
  await other.calibrate(c);
  for (let i = 1; i < HOLDS_BEFORE_REBASE; i++) {
    expect((await other.next(c)).hold).toBe(true);
    expect(await other.afterWait(c)).toBeNull();
  }
  expect((await other.next(c)).hold).toBe(true);
  expect(await other.afterWait(c)).toBe(6);
  expect((await other.next(c)).hold).toBe(false);
});

/**
 * A machine where the probe takes `copying` ms while the copy runs and `quiet` ms while the pacer
 * holds every stream (the gate closed): what the throttle must tell apart. `others`: whether
 * another session is at work; `clock`: the pacer's time.
 */
function machine(latency: { copying: () => number; quiet: () => number }, others = true) {
  let quiet = false;
  const clock = { ms: 0 };
  const env: PacerEnv = {
    async quietly(_c, measure) {
      quiet = true;
      try {
        return await measure();
      } finally {
        quiet = false;
      }
    },
    othersActive: async () => others,
    now: () => clock.ms,
  };
  const probe = async () => (quiet ? latency.quiet() : latency.copying());
  return { env, probe, clock, setOthers: (v: boolean) => (others = v) };
}

test('the reproduction: 1 ms quiet, 15 ms while the copy runs: the throttle keeps braking instead of taking 15 ms as its baseline', async () => {
  const m = machine({ copying: () => 15, quiet: () => 1 });
  const p = new Pacer(0, m.probe, m.env);
  const c = {} as never;
  expect(await p.calibrate(c)).toBe(1);
  const waits: number[] = [];
  for (let i = 0; i < 8; i++) {
    const pace = await p.next(c, 1000);
    waits.push(pace.waitMs);
    expect(pace.why).toMatch(/^slowed down/);
    expect(await p.afterWait(c)).toBeNull(); // quiet again: the copy is the cause
    m.clock.ms += 1000;
  }
  expect(waits).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000]);
  expect(p.baseline).toBe(1);
});

test('a baseline measured in a spike comes back down: every REBASE_EVERY_MS, and after a wait that did not help', async () => {
  let spike = true;
  const m = machine({ copying: () => 5, quiet: () => (spike ? 8 : 1) });
  const p = new Pacer(0, m.probe, m.env);
  const c = {} as never;
  expect(await p.calibrate(c)).toBe(8);
  spike = false;
  // 5 ms is under the spike's limit (16 ms): no brake, and no re-measure before its time.
  expect(await p.next(c)).toEqual({ waitMs: 0, hold: false, why: null });
  expect(p.baseline).toBe(8);
  m.clock.ms += REBASE_EVERY_MS;
  const pace = await p.next(c, 1000);
  expect(p.baseline).toBe(1);
  expect(pace.why).toBe('slowed down, 20 ms after each batch: a probe commit takes 5 ms, over its limit of 3 ms (1 ms with the copy quiet)');
  // After a wait: a spike measured again comes down at once, and says so.
  const q = machine({ copying: () => 20, quiet: () => 1 });
  const r = new Pacer(0, q.probe, { ...q.env, quietly: async (_c, measure) => measure() });
  expect(await r.calibrate(c)).toBe(20);
  const s = new Pacer(0, q.probe, q.env);
  (s as unknown as { baselineMs: number }).baselineMs = 8;
  expect((await s.next(c, 1000)).why).toMatch(/^slowed down/);
  expect(await s.afterWait(c)).toBe(1);
  expect(s.baseline).toBe(1);
});

test('nobody else at work: a probe slowed by our own copy is no reason to brake; somebody at work: it is', async () => {
  const m = machine({ copying: () => 15, quiet: () => 1 }, false);
  const c = {} as never;
  const first = new Pacer(0, m.probe, m.env);
  const other = new Pacer(1, m.probe, m.env);
  await first.calibrate(c);
  await other.calibrate(c);
  for (let i = 0; i < 5; i++) {
    expect(await first.next(c, 500)).toEqual({ waitMs: 0, hold: false, why: null });
    expect(await other.next(c, 500)).toEqual({ waitMs: 0, hold: false, why: null });
  }
  m.setOthers(true);
  expect((await first.next(c, 500)).why).toMatch(/^slowed down, 20 ms after each batch/);
  expect(await other.next(c, 500)).toMatchObject({ hold: true, waitMs: HOLD_MS });
  // The other writer stops: the pause halves away.
  m.setOthers(false);
  expect((await first.next(c, 500)).waitMs).toBe(10);
  expect((await first.next(c, 500)).waitMs).toBe(5);
  expect((await first.next(c, 500)).waitMs).toBe(0);
});

describe('probe on PostgreSQL', () => {
  let db: TestDb;
  beforeAll(async () => (db = await createTestDb()));
  afterAll(async () => db?.drop());
  /** A client of the test database under `application_name` (partition-switchover is ours). */
  const connect = async (application_name: string) => {
    const c = new pg.Client({ connectionString: db.url, application_name });
    await c.connect();
    return c;
  };

  test('the probe commits a transaction with an xid, and calibration measures it', async () => {
    const c = await db.pool.connect();
    try {
      const ms = await probeMs(c);
      expect(ms).toBeGreaterThan(0);
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1); // not left in a transaction
      // The probe's statements, as probeMs sends them: their transaction took an xid and committed.
      // (Not by counting xids before and after: other test files running at once take xids too.)
      const results = (await c.query({ text: sqlFile('session/commit_probe'), queryMode: 'simple' } as pg.QueryConfig)) as unknown as pg.QueryResult[];
      const xid = results.find((r) => r.rows?.length)!.rows[0].pg_current_xact_id as string;
      expect((await c.query('select pg_xact_status($1::xid8) as s', [xid])).rows[0].s).toBe('committed');
      expect((await c.query('select pg_current_xact_id() > $1::xid8 as later', [xid])).rows[0].later).toBe(true);
      const p = new Pacer(0);
      expect(await p.calibrate(c)).toBeGreaterThan(0);
      expect(p.baseline).toBeGreaterThan(0);
    } finally {
      c.release();
    }
  });

  test('the gate: closing it waits for the batch in flight and holds the next; measuring with a batch that runs on gives up after lock_timeout', async () => {
    const gate = copyGateKey('run-1', 'revenues');
    const batch = await db.pool.connect();
    const next = await db.pool.connect();
    const pacer = await db.pool.connect();
    try {
      const events: string[] = [];
      await batch.query('begin');
      await batch.query(`select pg_advisory_xact_lock_shared(hashtext($1::text))`, [gate]);
      const env = gatedEnv(gate);
      const measured = env.quietly(pacer, async () => {
        events.push('measure');
        // While the copy is quiet, a new batch waits at the gate.
        const held = next.query(`select pg_advisory_xact_lock_shared(hashtext($1::text))`, [gate]).then(() => events.push('next batch'));
        await new Promise((r) => setTimeout(r, 200));
        events.push('measured');
        return { held };
      });
      await new Promise((r) => setTimeout(r, 300));
      events.push('batch commits');
      await batch.query('commit');
      await (await measured)!.held;
      expect(events).toEqual(['batch commits', 'measure', 'measured', 'next batch']);
      expect((await pacer.query(`show lock_timeout`)).rows[0].lock_timeout).toBe('0'); // restored
      // A batch that runs on past the wait: no quiet measurement (null), nothing left closed.
      await batch.query('begin');
      await batch.query(`select pg_advisory_xact_lock_shared(hashtext($1::text))`, [gate]);
      const t0 = Date.now();
      expect(await env.quietly(pacer, async () => 'never')).toBeNull();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      await batch.query('commit');
      expect((await pacer.query(`select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()`)).rows[0].n).toBe(0);
    } finally {
      for (const c of [batch, next, pacer]) c.release();
    }
  });

  test('others at work: a session not ours in a transaction or that wrote in the last 2 s; a monitor that only reads and ours (partition-switchover) never count', async () => {
    const ours = await connect('partition-switchover');
    const alsoOurs = await connect('partition-switchover');
    const env = gatedEnv('unused');
    try {
      await alsoOurs.query('select 1');
      // Wait out the other sessions of this database (the test's pool) going idle for 2 s.
      await new Promise((r) => setTimeout(r, 2500));
      expect(await env.othersActive(ours)).toBe(false);
      const app = await connect('app');
      try {
        // Just connected, nothing run yet (a pool opening a connection): nobody to protect.
        expect(await env.othersActive(ours)).toBe(false);
        // A monitor polling (a plain read, outside a transaction): nobody to protect.
        await app.query('select 1');
        expect(await env.othersActive(ours)).toBe(false);
        await app.query('  SHOW work_mem');
        expect(await env.othersActive(ours)).toBe(false);
        // A write: at work for 2 s.
        await app.query('create temp table if not exists t_w (x int); insert into t_w values (1)');
        expect(await env.othersActive(ours)).toBe(true);
        await new Promise((r) => setTimeout(r, 2500));
        expect(await env.othersActive(ours)).toBe(false);
        // A statement that reads first and then writes (WITH ... INSERT): counted.
        await app.query('with x as (select 1 as v) insert into t_w select v from x');
        expect(await env.othersActive(ours)).toBe(true);
        await new Promise((r) => setTimeout(r, 2500));
        // In a transaction (idle in transaction, a writer holding locks): at work however long.
        await app.query('begin');
        await new Promise((r) => setTimeout(r, 2500));
        expect(await env.othersActive(ours)).toBe(true);
        await app.query('rollback');
      } finally {
        await app.end();
      }
    } finally {
      await ours.end();
      await alsoOurs.end();
    }
  });

  test('writers first: a stream above an unfinished one holds while a session not ours is at work; the lowest, adaptive off, or nobody at work: it copies', async () => {
    const ours = await connect('partition-switchover');
    const env = gatedEnv('unused');
    const live = (busyBelow: number | undefined, adaptive = true): StreamControls => ({
      paused: null,
      hold: null,
      batchSize: 100,
      pauseMs: 0,
      brake: { adaptive, brakePauseMs: 500 },
      ...(busyBelow === undefined ? {} : { busyBelow }),
    });
    try {
      await new Promise((r) => setTimeout(r, 2500));
      expect(await oneStream(ours, env, live(1))).toBeNull();
      const app = await connect('app');
      try {
        await app.query('begin');
        await app.query('create temp table t_one (x int)');
        expect(await oneStream(ours, env, live(1))).toBe('held: one stream while the application writes (adaptive throttle), 1 stream below still copying');
        expect(await oneStream(ours, env, live(2))).toMatch(/2 streams below still copying$/);
        expect(await oneStream(ours, env, live(0))).toBeNull();
        expect(await oneStream(ours, env, live(1, false))).toBeNull();
        // A workflow from before busyBelow answers without it: no hold.
        expect(await oneStream(ours, env, live(undefined))).toBeNull();
        // The database's record of the streams below comes before the workflow's count.
        expect(await oneStream(ours, env, live(1), async () => 0)).toBeNull();
        expect(await oneStream(ours, env, live(2), async () => 1)).toMatch(/, 1 stream below still copying$/);
        await app.query('rollback');
      } finally {
        await app.end();
      }
    } finally {
      await ours.end();
    }
  });

  test('the streams below one that have not recorded their last batch, as the database has them (sql/bookkeeping/copy_streams_busy_below.sql)', async () => {
    await db.pool.query(sqlFile('state'));
    const busy = async (stream: number, runId = 'r1') =>
      (await db.pool.query(sqlFile('bookkeeping/copy_streams_busy_below'), ['wf', runId, 'revenues', stream])).rows[0].busy as number;
    const save = (stream: number, done: boolean, table = 'revenues', runId = 'r1') =>
      db.pool.query(sqlFile('bookkeeping/copy_progress'), ['wf', runId, table, stream, null, 10, 1, done]);
    // Nothing recorded yet: every stream below is busy.
    expect(await busy(0)).toBe(0);
    expect(await busy(2)).toBe(2);
    await save(0, false);
    await save(1, true);
    expect(await busy(2)).toBe(1);
    // Another table's and another run's streams do not count.
    await save(0, true, 'expenses');
    await save(0, true, 'revenues', 'r0');
    expect(await busy(1)).toBe(1);
    await save(0, true);
    expect(await busy(1)).toBe(0);
    expect(await busy(2)).toBe(0);
    expect(await busy(3)).toBe(1);
  });
});
