// The adaptive throttle's decision (activities/pacer.ts), pure; and its probe on the real database.
import { Pacer, probeLimit, probeMs, HOLD_MS, HOLDS_BEFORE_REBASE } from '../activities/pacer';
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
  expect(waits[0].why).toBe('slowed down, 20 ms after each batch: a probe commit takes 5 ms, over its limit of 4 ms (2 ms before the copy)');
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
    why: 'down to one stream: a probe commit takes 9 ms, over its limit of 4 ms (2 ms before the copy)',
  });
  expect(p.decide(4.5)).toMatchObject({ hold: true });
  expect(p.decide(4)).toEqual({ waitMs: 0, hold: false, why: null });
});

test('a probe still slow while the copy waits moves the baseline up; another stream re-measures only after long holds', async () => {
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
  // Back to fast while the copy waits: the copy was the cause, the baseline stays.
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

describe('probe on PostgreSQL', () => {
  let db: TestDb;
  beforeAll(async () => (db = await createTestDb()));
  afterAll(async () => db?.drop());

  test('the probe commits a transaction with an xid, and calibration measures it', async () => {
    const c = await db.pool.connect();
    try {
      const before = Number((await c.query('select pg_current_xact_id()::text::bigint as x')).rows[0].x);
      const ms = await probeMs(c);
      expect(ms).toBeGreaterThan(0);
      const after = Number((await c.query('select pg_current_xact_id()::text::bigint as x')).rows[0].x);
      expect(after - before).toBe(2); // the probe's own transaction took one
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1); // not left in a transaction
      const p = new Pacer(0);
      expect(await p.calibrate(c)).toBeGreaterThan(0);
      expect(p.baseline).toBeGreaterThan(0);
    } finally {
      c.release();
    }
  });
});
