// What a copy stream waits for before each batch: while the operator paused the switchover,
// while the table's parallelism holds this stream, while a brake bound is exceeded, or while the
// adaptive throttle (activities/pacer.ts) says the application feels the copy (src/status.ts
// shows why).
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile } from '../src/db';
import type { switchoverMetrics } from '../src/metrics';
import type { StreamControls } from '../src/status';
import { throwIfCancelled } from './context';
import type { ProgressReporter, StreamPosition } from './copy-progress';
import { othersActive, Pacer, probeMs, type PacerEnv } from './pacer';

type ControlOpts = { batchSize: number; pauseMs: number; brake?: StreamControls['brake'] };

/**
 * The operator's live settings (pause, retune, parallelism), read from the workflow at most once
 * a second; the last answer stays when the query fails.
 */
export class LiveControls {
  current: StreamControls;
  private at = 0;

  /** `query`: the workflow's controls query for this stream. */
  constructor(
    opts: ControlOpts,
    private readonly query: () => Promise<StreamControls>,
    private readonly metrics: ReturnType<typeof switchoverMetrics>,
  ) {
    this.current = {
      paused: null,
      hold: null,
      batchSize: opts.batchSize,
      pauseMs: opts.pauseMs,
      brake: { ...opts.brake, brakePauseMs: opts.brake?.brakePauseMs ?? 500, adaptive: opts.brake?.adaptive ?? false },
    };
  }

  async refresh(): Promise<void> {
    if (Date.now() - this.at < 1000) return;
    this.at = Date.now();
    try {
      this.current = await this.query();
      this.metrics.throttlePause.set(this.current.pauseMs);
      this.metrics.batchSize.set(this.current.batchSize);
    } catch {
      /* keep the last answer */
    }
  }
}

/** One look before a batch: why the stream waits (null: it goes on), how long, and whether it looks again. */
interface Look {
  why: string | null;
  waitMs: number;
  hold: boolean;
  /** The operator's pause or the parallelism's hold, if that is why. */
  held: string | null;
  /** Whether the adaptive throttle decided (it probes again after the wait). */
  paced: boolean;
}

/** Where a stream copies: its table and number, and the key of its table's copy gate (copyGateKey). */
export interface StreamOf {
  table: string;
  stream: number;
  gate: string;
  /** How many streams below this one have not recorded their last batch, as the database has it (sooner than the workflow). */
  busyBelow?: () => Promise<number>;
}

/** How often a stream held by writers first looks again: it takes over as soon as the streams below it are done. */
const ONE_STREAM_LOOK_MS = 100;

/** The key of a table's copy gate: one per run of the switchover and table, shared by its streams. */
export function copyGateKey(runId: string, table: string): string {
  return `partition-switchover copy ${runId} ${table}`;
}

/** How long a stream waits for the batches in flight to end before it measures without a quiet copy. */
const QUIET_WAIT = '2s';

/**
 * The real PacerEnv: the copy made quiet by closing the table's gate (each batch passes it,
 * StreamCopy), and the other sessions at work read from pg_stat_activity.
 */
export function gatedEnv(gate: string): PacerEnv {
  return {
    async quietly(c, measure) {
      const { previous } = (await c.query(sqlFile('session/lock_timeout_session'), [QUIET_WAIT])).rows[0];
      const closed = await c
        .query(sqlFile('session/copy_gate_close'), [gate])
        .then(
          () => true,
          (err: { code?: string }) => {
            if (err.code !== '55P03') throw err;
            return false; // a batch ran on: measured another time
          },
        )
        // The session's own setting back, whatever happened: the connection goes back to the pool.
        .finally(() => c.query(sqlFile('session/lock_timeout_session'), [previous]));
      if (!closed) return null;
      try {
        return await measure();
      } finally {
        await c.query(sqlFile('session/copy_gate_open'), [gate]);
      }
    },
    othersActive,
    now: () => Date.now(),
  };
}

export class Brake {
  private lastBatchMs = 0;
  private readonly pacer: Pacer;
  private readonly env: PacerEnv;
  private readonly ctx = Context.current();
  private readonly controls: LiveControls;
  private readonly progress: ProgressReporter;
  private readonly pos: StreamPosition;
  private readonly stream: StreamOf;

  constructor(
    private readonly c: pg.ClientBase,
    by: { controls: LiveControls; progress: ProgressReporter; pos: StreamPosition; stream: StreamOf },
  ) {
    ({ controls: this.controls, progress: this.progress, pos: this.pos, stream: this.stream } = by);
    this.env = gatedEnv(by.stream.gate);
    this.pacer = new Pacer(by.stream.stream, probeMs, this.env);
  }

  /** The adaptive throttle's baseline, before the stream's first batch. */
  async calibrate(): Promise<void> {
    await this.pacer.calibrate(this.c);
  }

  /** How long the stream's last batch took (ms). */
  batchTook(ms: number): void {
    this.lastBatchMs = ms;
  }

  /** Waits before the next batch as long as something says so. */
  async wait(): Promise<void> {
    for (;;) {
      const { why, waitMs, hold, held, paced } = await this.look();
      if (why === null) {
        await this.progress.setBraking(null, false);
        if (waitMs > 0) await this.ctx.sleep(waitMs); // the slowdown winding down
        return;
      }
      if (held === null) this.progress.brakes++;
      await this.progress.setBraking(why, held !== null);
      this.ctx.heartbeat({ ...this.pos, braking: this.progress.braking });
      await this.ctx.sleep(waitMs);
      throwIfCancelled();
      if (paced) {
        const rebased = await this.pacer.afterWait(this.c);
        if (rebased !== null)
          this.ctx.log.info(
            `copy ${this.stream.table} stream ${this.stream.stream + 1}: the probe takes ${rebased.toFixed(1)} ms with the copy quiet; that is its baseline now`,
          );
      }
      if (!hold) return;
    }
  }

  private async look(): Promise<Look> {
    await this.controls.refresh();
    const live = this.controls.current;
    // The database's count of unfinished streams below, read at most once per look (the hold and the pace both ask).
    let below: Promise<number> | undefined;
    const read = this.stream.busyBelow;
    const busyBelow = read && (() => (below ??= read()));
    const firstHeld = live.paused ?? live.hold;
    const held = firstHeld ?? (await oneStream(this.c, this.env, live, busyBelow));
    const why = held ?? (await brakeReason(this.c, live.brake, this.lastBatchMs));
    const waitMs = why === null ? 0 : held !== null ? (firstHeld === null ? ONE_STREAM_LOOK_MS : 500) : (live.brake.brakePauseMs ?? 500);
    const batchMs = this.lastBatchMs;
    this.lastBatchMs = 0;
    const paced = why === null && live.brake.adaptive !== false;
    if (!paced) return { why, waitMs, hold: true, held, paced };
    // The lowest stream still copying pauses; a higher one holds (writers first, activities/pacer.ts).
    const lowest = this.stream.stream === 0 || (busyBelow !== undefined && (await busyBelow()) <= 0);
    return { ...(await this.pacer.next(this.c, batchMs || Infinity, lowest)), held, paced };
  }
}

/**
 * Writers first: with the adaptive throttle on, while a session not ours is at work only the
 * lowest unfinished stream copies (bench, 2 cores, 1M rows: two streams took the application's
 * write p99 to 3.7x its baseline, one stream to 2.1x, the copy stage slower: README "Speed"). A
 * stream whose lower streams finished copies, whoever writes; with nobody else at work every
 * stream copies. The workflow's count of the streams below (`live.busyBelow`) lags their end by
 * an activity completion and this stream's next read of it (a second); `busyBelow`, the
 * database's record, does not. Returns why this stream holds, or null.
 */
export async function oneStream(c: pg.ClientBase, env: PacerEnv, live: StreamControls, busyBelow?: () => Promise<number>): Promise<string | null> {
  if (live.brake.adaptive === false || !live.busyBelow) return null;
  const busy = busyBelow ? Math.min(live.busyBelow, await busyBelow()) : live.busyBelow;
  if (busy <= 0) return null;
  if (!(await env.othersActive(c))) return null;
  return `held: one stream while the application writes (adaptive throttle), ${busy} stream${busy > 1 ? 's' : ''} below still copying`;
}

/** Why the copy should pause now, or null: the brake's bounds against the last batch and the database. */
export async function brakeReason(
  c: pg.ClientBase,
  b: { maxBatchMs?: number; maxLockWaitMs?: number; maxReplicationLagMs?: number } | undefined,
  lastBatchMs: number,
): Promise<string | null> {
  if (!b) return null;
  if (b.maxBatchMs !== undefined && lastBatchMs > b.maxBatchMs) return `last batch took ${lastBatchMs} ms (maxBatchMs ${b.maxBatchMs})`;
  if (b.maxLockWaitMs === undefined && b.maxReplicationLagMs === undefined) return null;
  // pg_locks.waitstart (PostgreSQL 14+): how long each session of this database has waited for
  // its lock; our own sessions do not count (the application's waits are what the brake limits).
  const r = (await c.query(sqlFile('catalog/lock_wait_and_lag'))).rows[0] as { lock_wait_ms: number; lag_ms: number };
  if (b.maxLockWaitMs !== undefined && r.lock_wait_ms > b.maxLockWaitMs) {
    return `a session has waited ${Math.round(r.lock_wait_ms)} ms for a lock (maxLockWaitMs ${b.maxLockWaitMs})`;
  }
  if (b.maxReplicationLagMs !== undefined && r.lag_ms > b.maxReplicationLagMs) {
    return `replication lag ${Math.round(r.lag_ms)} ms (maxReplicationLagMs ${b.maxReplicationLagMs})`;
  }
  return null;
}
