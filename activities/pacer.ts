// The adaptive throttle (throttle.adaptive, on by default): between batches a copy stream times
// what any application write pays, one tiny committed transaction (the commit waits for the WAL
// flush, which carries the copy's unflushed batches, and for a CPU), against that probe's
// baseline. The baseline is measured with the copy quiet: every stream of the table between
// batches (PacerEnv.quietly), at the stream's start, every REBASE_EVERY_MS, and after a wait that
// did not help; so it moves up when the machine is slower for reasons not ours and comes back
// down when it is faster again. While the probe is over its limit and another session is at work
// (nobody else: our own copy is all it feels, and there is nobody to protect), the lowest stream
// still copying (the first, or one whose lower streams have all finished) pauses a little longer
// after each batch (doubling, up to 1 s and never longer than its last batch took) and every
// stream above it waits: the copy drops to one stream. Once under, the pause halves away and the
// streams resume.
import type pg from 'pg';
import { sqlFile } from '../src/db';

const CALIBRATION_PROBES = 5;
const RECENT = 3;
/** Longest pause of the first stream after a batch. */
const MAX_PAUSE_MS = 1000;
/** How long another stream waits before probing again. */
export const HOLD_MS = 500;
/** Waits of another stream in a row after which its baseline is measured again. */
export const HOLDS_BEFORE_REBASE = 20;
/** How often the baseline is measured again with the copy quiet, so that it can come back down. */
export const REBASE_EVERY_MS = 30_000;

/** What the pacer needs besides its probe (real ones in activities/copy-brake.ts; a test's own). */
export interface PacerEnv {
  /** Runs `measure` while every stream of the table is between batches; null when the copy could not be made quiet in time. */
  quietly<T>(c: pg.ClientBase, measure: () => Promise<T>): Promise<T | null>;
  /** Whether a session not ours is at work: somebody the throttle protects. */
  othersActive(c: pg.ClientBase): Promise<boolean>;
  now(): number;
}

/** Whether a session not ours may be writing (sql/catalog/others_active.sql): somebody the throttle protects. */
export async function othersActive(c: pg.ClientBase): Promise<boolean> {
  return (await c.query(sqlFile('catalog/others_active'))).rows[0].active as boolean;
}

/** No gate (a stream measures as it is), somebody always to protect: the pacer alone, as a test feeds it. */
export const UNGATED: PacerEnv = { quietly: (_c, measure) => measure(), othersActive: async () => true, now: () => Date.now() };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

/** The probe: a transaction with an xid, so its commit writes and flushes a commit record. */
export async function probeMs(c: pg.ClientBase): Promise<number> {
  // Read before the clock starts: the file is read once, the first probe must not time it.
  const text = sqlFile('session/commit_probe');
  const t = performance.now();
  await c.query({ text, queryMode: 'simple' } as pg.QueryConfig);
  return performance.now() - t;
}

/**
 * The limit a probe's recent median may reach: twice the baseline, and never under baseline + 2 ms
 * (a commit's own jitter on an idle server: below it the throttle stalled a 1M-row copy to a
 * fifth of its speed, measured).
 */
export function probeLimit(baselineMs: number): number {
  return Math.max(2 * baselineMs, baselineMs + 2);
}

export interface Pace {
  /** Wait before the next batch (ms). */
  waitMs: number;
  /** Whether the stream holds (waits and probes again) rather than pausing once. */
  hold: boolean;
  /** Why it slows down, for status; null when it does not. */
  why: string | null;
}

export class Pacer {
  private baselineMs = 0;
  private rebasedAt = 0;
  private recent: number[] = [];
  private pauseMs = 0;
  private holds = 0;
  /** Whether this stream is the lowest one still copying (the first, or every one below it has finished). */
  private lowest: boolean;

  /** `probe`: how a probe is timed (the real one unless a test feeds latencies). */
  constructor(
    private readonly stream: number,
    private readonly probe: (c: pg.ClientBase) => Promise<number> = probeMs,
    private readonly env: PacerEnv = UNGATED,
  ) {
    this.lowest = stream === 0;
  }

  /** The probe's baseline before the stream's first batch: the median of a few probes, with the copy quiet when it can be. */
  async calibrate(c: pg.ClientBase): Promise<number> {
    this.baselineMs = (await this.measure(c, CALIBRATION_PROBES, true)) ?? (await this.measure(c, CALIBRATION_PROBES, false))!;
    this.rebasedAt = this.env.now();
    return this.baselineMs;
  }

  get baseline(): number {
    return this.baselineMs;
  }

  /**
   * Probes once and says how to go on; `lastBatchMs`: how long the stream's last batch took;
   * `lowest`: whether every stream below this one has finished (then it is the one stream left,
   * which pauses like the first and is never held).
   */
  async next(c: pg.ClientBase, lastBatchMs = Infinity, lowest = this.stream === 0): Promise<Pace> {
    this.lowest = lowest;
    if (this.env.now() - this.rebasedAt >= REBASE_EVERY_MS) await this.rebase(c);
    this.recent.push(await this.probe(c));
    if (this.recent.length > RECENT) this.recent.shift();
    const now = median(this.recent);
    // Over the limit with nobody else at work: the probe feels only our copy; nobody to protect.
    const protect = now <= probeLimit(this.baselineMs) || (await this.env.othersActive(c));
    const pace = this.decide(protect ? now : this.baselineMs, lastBatchMs);
    this.holds = pace.hold ? this.holds + 1 : 0;
    return pace;
  }

  /**
   * After a wait of this stream (the first stream's pause; another stream's long holds): the
   * baseline measured again with the copy quiet, up when the machine is slower for reasons not
   * ours, down when it is faster. Returns the new baseline when it moved past its limit or to
   * under half, else null (it is updated either way).
   */
  async afterWait(c: pg.ClientBase): Promise<number | null> {
    if (!this.lowest && this.holds < HOLDS_BEFORE_REBASE) return null;
    const before = this.baselineMs;
    const now = await this.rebase(c);
    return now > probeLimit(before) || now < before / 2 ? now : null;
  }

  /** Measures the baseline again with the copy quiet (kept when it cannot be made quiet); returns it. */
  private async rebase(c: pg.ClientBase): Promise<number> {
    const quiet = await this.measure(c, RECENT, true);
    this.rebasedAt = this.env.now();
    if (quiet === null) return this.baselineMs;
    if (quiet > probeLimit(this.baselineMs)) this.pauseMs = 0; // the machine's slowness, not ours
    this.baselineMs = quiet;
    this.recent = [];
    this.holds = 0;
    return quiet;
  }

  /** The median of `n` probes, with every stream between batches when `quiet` (null if that could not be had). */
  private async measure(c: pg.ClientBase, n: number, quiet: boolean): Promise<number | null> {
    const run = async () => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) xs.push(await this.probe(c));
      return median(xs);
    };
    return quiet ? this.env.quietly(c, run) : run();
  }

  /**
   * The decision for a recent probe median of `nowMs` (pure; tested alone). The first stream's
   * pause never exceeds its last batch's time: it copies at least half the time, so a throttle
   * that misjudges can at worst halve the one stream left, never stop it.
   */
  decide(nowMs: number, lastBatchMs = Infinity): Pace {
    const limit = probeLimit(this.baselineMs);
    if (nowMs <= limit) {
      this.pauseMs = this.pauseMs / 2 < 5 ? 0 : Math.round(this.pauseMs / 2);
      return { waitMs: this.pauseMs, hold: false, why: null };
    }
    const felt = `a probe commit takes ${r1(nowMs)} ms, over its limit of ${r1(limit)} ms (${r1(this.baselineMs)} ms with the copy quiet)`;
    if (!this.lowest) return { waitMs: HOLD_MS, hold: true, why: `down to one stream: ${felt}` };
    this.pauseMs = Math.min(MAX_PAUSE_MS, Math.max(20, Math.round(lastBatchMs)), Math.max(20, this.pauseMs * 2));
    return { waitMs: this.pauseMs, hold: false, why: `slowed down, ${this.pauseMs} ms after each batch: ${felt}` };
  }
}
