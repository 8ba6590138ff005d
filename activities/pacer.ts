// The adaptive throttle (throttle.adaptive, on by default): between batches a copy stream times
// what any application write pays, one tiny committed transaction (the commit waits for the WAL
// flush, which carries the copy's unflushed batches, and for a CPU), against that probe's own
// baseline measured when the stream started. While it is over its limit, the first stream pauses
// a little longer after each batch (doubling, up to 1 s and never longer than its last batch took)
// and every other stream waits: the copy
// drops to one stream. Once under, the pause halves away and the streams resume. When the probe
// stays slow while the copy itself waits (the first stream probes again at the end of its pause,
// the others after HOLDS_BEFORE_REBASE waits), the machine is slower for reasons not ours: the
// baseline moves up to that, so a busy database slows the copy but never stops it.
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
  private recent: number[] = [];
  private pauseMs = 0;
  private holds = 0;

  /** `probe`: how a probe is timed (the real one unless a test feeds latencies). */
  constructor(
    private readonly stream: number,
    private readonly probe: (c: pg.ClientBase) => Promise<number> = probeMs,
  ) {}

  /** The probe's baseline: the median of a few probes, before the stream's first batch. */
  async calibrate(c: pg.ClientBase): Promise<number> {
    const xs: number[] = [];
    for (let i = 0; i < CALIBRATION_PROBES; i++) xs.push(await this.probe(c));
    this.baselineMs = median(xs);
    return this.baselineMs;
  }

  get baseline(): number {
    return this.baselineMs;
  }

  /** Probes once and says how to go on; `lastBatchMs`: how long the stream's last batch took. */
  async next(c: pg.ClientBase, lastBatchMs = Infinity): Promise<Pace> {
    this.recent.push(await this.probe(c));
    if (this.recent.length > RECENT) this.recent.shift();
    const pace = this.decide(median(this.recent), lastBatchMs);
    this.holds = pace.hold ? this.holds + 1 : 0;
    return pace;
  }

  /**
   * After a wait of this stream: whether the probe is still slow although the copy waited (the
   * first stream's pause, when the others hold too) or has waited long (another stream's holds);
   * then the slowness is the machine's, and the baseline becomes what the probe takes now.
   * Returns the new baseline, or null when it stays.
   */
  async afterWait(c: pg.ClientBase): Promise<number | null> {
    if (this.stream > 0 && this.holds < HOLDS_BEFORE_REBASE) return null;
    const xs: number[] = [];
    for (let i = 0; i < RECENT; i++) xs.push(await this.probe(c));
    const now = median(xs);
    if (now <= probeLimit(this.baselineMs)) return null;
    this.baselineMs = now;
    this.recent = [];
    this.holds = 0;
    this.pauseMs = 0;
    return now;
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
    const felt = `a probe commit takes ${r1(nowMs)} ms, over its limit of ${r1(limit)} ms (${r1(this.baselineMs)} ms before the copy)`;
    if (this.stream > 0) return { waitMs: HOLD_MS, hold: true, why: `down to one stream: ${felt}` };
    this.pauseMs = Math.min(MAX_PAUSE_MS, Math.max(20, Math.round(lastBatchMs)), Math.max(20, this.pauseMs * 2));
    return { waitMs: this.pauseMs, hold: false, why: `slowed down, ${this.pauseMs} ms after each batch: ${felt}` };
  }
}
