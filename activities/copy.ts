// The copy: server-side batches (INSERT ... SELECT, no row through Node), each batch one
// transaction that also records the stream's position, so a retry resumes after the last
// committed batch. Progress goes to the workflow as a bounded number of signals.
// A table with an integer key is copied in ranges of that key (src/copysql.ts says why);
// others in keyset batches. Mode "lock" locks each batch's rows FOR SHARE; mode "recheck" does
// not, and copyRecheck (activities/recheck.ts) repairs what raced a writer.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { controlsQuery, progressSignal } from '../src/shared';
import type { StreamControls } from '../src/status';
import { copyBatchSql, OUR_WRITE_SQL } from '../src/sqlgen';
import { nextKeySql, rangeBatchSql, splitBoundsSql } from '../src/copysql';
import { DEFAULT_COPY_MODE, type CopyMode, type Throttle } from '../src/input';
import { switchoverMetrics } from '../src/metrics';
import type { CopyProgress, CopyResult, CopyStream, TablePlan } from '../src/types';
import { Deps, stage, throwIfCancelled, workflowId } from './context';
import { Pacer } from './pacer';

/** A slowdown this long (ms) is signalled at once rather than with the next tenth of progress. */
const STALL_SIGNAL_MS = 5_000;

export function copyActivities({ pools }: Deps) {
  return {
    async copyRange(
      database: string,
      tp: TablePlan,
      s: CopyStream,
      opts: {
        batchSize: number;
        pauseMs: number;
        estimatedRows: number;
        /** Absent only in calls recorded before copy modes existed: the input's default then, as the workflow's. */
        mode?: CopyMode;
        /** The brake's bounds (input.throttle); unset bounds are not checked. */
        brake?: Pick<Throttle, 'maxBatchMs' | 'maxLockWaitMs' | 'maxReplicationLagMs' | 'brakePauseMs' | 'adaptive'>;
      },
    ): Promise<CopyResult> {
      const lock = (opts.mode ?? DEFAULT_COPY_MODE) === 'lock';
      const ctx = Context.current();
      const wf = workflowId();
      const runId = ctx.info.workflowExecution!.runId;
      const metrics = switchoverMetrics({ table: tp.table, stream: s.stream });
      metrics.throttlePause.set(opts.pauseMs);
      metrics.batchSize.set(opts.batchSize);
      return stage('copy', tp.table, () =>
        withClient(pools.get(database), async (c) => {
          const t0 = Date.now();
          const saved = (
            await c.query(
              sqlFile('bookkeeping/copy_position'),
              [wf, runId, tp.table, s.stream],
            )
          ).rows[0];
          let cursor: string[] | null = saved?.cursor ?? null;
          let copied = Number(saved?.rows_copied ?? 0);
          let batches = Number(saved?.batches ?? 0);
          const resumedFrom = cursor;
          const startRows = copied;
          let lastBucket = -1;
          let brakes = 0;
          let braking: string | null = null;
          let signalled: string | null = null;
          let brakeSignals = 0;
          let lastBatchMs = 0;
          // The operator's live settings (pause, retune, parallelism), read from the workflow at
          // most once a second; the last answer stays when the query fails.
          let live: StreamControls = { paused: null, hold: null, batchSize: opts.batchSize, pauseMs: opts.pauseMs, brake: { ...opts.brake, brakePauseMs: opts.brake?.brakePauseMs ?? 500, adaptive: opts.brake?.adaptive ?? false } };
          let liveAt = 0;
          const readControls = async () => {
            if (Date.now() - liveAt < 1000) return;
            liveAt = Date.now();
            try {
              live = await ctx.client.withDeadline(Date.now() + 5000, () => ctx.client.workflow.getHandle(wf).query(controlsQuery, tp.table, s.stream));
              metrics.throttlePause.set(live.pauseMs);
              metrics.batchSize.set(live.batchSize);
            } catch {
              /* keep the last answer */
            }
          };
          // Progress signals, a fixed number per stream whatever the table's size (the history stays
          // flat): one per tenth of the estimate, plus the first few changes of the brake.
          const report = async (done: boolean, force = false) => {
            const rate = (copied - startRows) / Math.max(0.001, (Date.now() - t0) / 1000);
            metrics.copyRate.set(done ? 0 : rate);
            const bucket = Math.min(10, Math.floor((10 * copied) / Math.max(1, opts.estimatedRows)));
            if (!done && !force && bucket === lastBucket) return;
            lastBucket = bucket;
            const p: CopyProgress = { table: tp.table, stream: s.stream, rowsCopied: copied, rowsPerSec: Math.round(rate), cursor, done, brakes, brake: braking };
            // Progress is best effort: a closed or unreachable workflow must not fail the copy.
            await ctx.client.workflow.getHandle(wf).signal(progressSignal, p).catch(() => undefined);
          };
          // The reason the stream slows down or waits (null: none). Every progress signal carries it;
          // an operator's hold is signalled each time it changes; a slowdown of the brake or the
          // adaptive throttle only once it has lasted STALL_SIGNAL_MS (a stream that stalls must
          // say why), once per stream, and its end: the history stays the same size at any row count.
          let operatorHold = false;
          let brakingSince = 0;
          const setBraking = async (why: string | null, operator: boolean) => {
            const was = braking;
            const wasOperator = operatorHold;
            braking = why;
            operatorHold = operator && why !== null;
            if (why !== null && was === null) brakingSince = Date.now();
            if (operator ? why !== was : wasOperator && why !== was) {
              signalled = why;
              await report(false, true);
            } else if (why === null ? signalled !== null : signalled === null && brakeSignals < 1 && Date.now() - brakingSince >= STALL_SIGNAL_MS) {
              if (why !== null) brakeSignals++;
              signalled = why;
              await report(false, true);
            }
          };
          // Before each batch: wait while the operator paused the switchover, while the table's
          // parallelism holds this stream, while a brake bound is exceeded, or while the adaptive
          // throttle says the application feels the copy (src/status.ts shows why).
          const pacer = new Pacer(s.stream);
          await pacer.calibrate(c);
          const brake = async () => {
            for (;;) {
              await readControls();
              const held = live.paused ?? live.hold;
              let why = held ?? (await brakeReason(c, live.brake, lastBatchMs));
              let waitMs = why === null ? 0 : held !== null ? 500 : (live.brake.brakePauseMs ?? 500);
              let hold = true;
              const batchMs = lastBatchMs;
              lastBatchMs = 0;
              const paced = why === null && live.brake.adaptive !== false;
              if (paced) ({ why, waitMs, hold } = await pacer.next(c, batchMs || Infinity));
              if (why === null) {
                await setBraking(null, false);
                if (waitMs > 0) await ctx.sleep(waitMs); // the slowdown winding down
                return;
              }
              if (held === null) brakes++;
              await setBraking(why, held !== null);
              ctx.heartbeat({ cursor, copied, batches, braking });
              await ctx.sleep(waitMs);
              throwIfCancelled();
              if (paced) {
                const rebased = await pacer.afterWait(c);
                if (rebased !== null) ctx.log.info(`copy ${tp.table} stream ${s.stream + 1}: the probe takes ${rebased.toFixed(1)} ms while the copy waits too; that is its baseline now`);
              }
              if (!hold) return;
            }
          };
          // One batch in its own transaction, with the stream's position; returns rows seen.
          type Batch = { rows: number; inserted: number; last?: string[] };
          const batch = async (run: (retry: boolean) => Promise<Batch>, next: (r: Batch) => string[] | null, isDone: (r: Batch) => boolean) => {
            const t1 = Date.now();
            for (let attempt = 0; ; attempt++) {
              try {
                const { r, at } = await inTx(c, async () => {
                  // No wait for the WAL flush at each batch's commit: a crash can lose only the last
                  // batches together with their recorded position (one transaction), so the retry
                  // copies them again; any later synchronous commit (a writer's) flushes them first.
                  await c.query('SET LOCAL synchronous_commit = off');
                  // Our own writes to the partitioned copy: not recorded as direct writes (sql/state.sql).
                  await c.query(OUR_WRITE_SQL);
                  // A unique violation means a trigger insert committed after our snapshot: the
                  // retry sees it (and ON CONFLICT covers one that commits while we retry).
                  const r = await run(attempt > 0);
                  const done = isDone(r);
                  // The stream's position moves only once this transaction commits.
                  const moved = r.rows > 0 || done;
                  const at = { cursor: moved ? (next(r) ?? cursor) : cursor, copied: copied + (moved ? r.inserted : 0), batches: batches + (r.rows > 0 ? 1 : 0) };
                  await c.query(
                    sqlFile('bookkeeping/copy_progress'),
                    [wf, runId, tp.table, s.stream, at.cursor, at.copied, at.batches, done],
                  );
                  return { r, at };
                });
                ({ cursor, copied, batches } = at);
                if (r.inserted > 0) metrics.rowsCopied.add(r.inserted);
                lastBatchMs = Date.now() - t1;
                return r;
              } catch (err) {
                if ((err as { code?: string }).code === '23505' && attempt < 3) continue;
                throw err;
              }
            }
          };
          const afterBatch = async () => {
            ctx.heartbeat({ cursor, copied, batches });
            await report(false);
            if (live.pauseMs > 0) await ctx.sleep(live.pauseMs);
            throwIfCancelled();
          };

          if (!saved?.done && tp.splitColumn) {
            // Range batches [a, b] of the integer key (inclusive: the last one may end at the type's
            // maximum, where an exclusive bound would overflow); the cursor is the next range's start.
            // Open ends take the key's bounds now: rows added after the triggers came are theirs.
            const bounds = (await c.query(splitBoundsSql(tp))).rows[0] as { min: string | null; max: string | null };
            let a = cursor ? BigInt(cursor[0]) : s.lo !== null ? BigInt(s.lo) : bounds.min !== null ? BigInt(bounds.min) : 0n;
            // Last key of the stream; below `a` when there is nothing to copy (one empty batch marks it done).
            const last = s.hi !== null ? BigInt(s.hi) - 1n : bounds.max !== null ? BigInt(bounds.max) : a - 1n;
            for (;;) {
              await brake();
              const step = BigInt(live.batchSize);
              const b = a + step - 1n < last ? a + step - 1n : last;
              const r = await batch(
                (retry) => prepared(c, rangeBatchSql(tp, { lock, onConflict: retry }), [String(a), String(b)]),
                () => [String(b + 1n)],
                () => b >= last,
              );
              if (b >= last) break;
              a = b + 1n;
              if (r.rows === 0) {
                // A gap in the key: jump to the next key that exists (or to the last, which ends the stream).
                const n = (await c.query(nextKeySql(tp), [String(a)])).rows[0].next as string | null;
                a = n === null || BigInt(n) > last ? last : BigInt(n);
              }
              await afterBatch();
            }
          }
          while (!saved?.done && !tp.splitColumn) {
            await brake();
            const params: unknown[] = [...(cursor ?? [])];
            if (s.lo !== null) params.push(s.lo);
            if (s.hi !== null) params.push(s.hi);
            params.push(live.batchSize);
            const text = copyBatchSql(tp, { withCursor: cursor !== null, lo: s.lo !== null, hi: s.hi !== null, lock });
            const r = await batch(
              async () => (await c.query(text, params)).rows[0],
              (x) => (x.rows > 0 ? (x.last as string[]) : null),
              (x) => x.rows === 0,
            );
            if (r.rows === 0) break;
            await afterBatch();
          }
          await report(true);
          return { table: tp.table, stream: s.stream, rowsCopied: copied, batches, resumedFrom, ms: Date.now() - t0, brakes };
        }),
      );
    },
  };
}

/** Runs `text` as a named prepared statement (planned once per connection; the name is its hash). */
async function prepared(c: pg.ClientBase, text: string, values: unknown[]) {
  const name = `ps_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
  return (await c.query({ name, text, values })).rows[0] as { rows: number; inserted: number };
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
  const r = (
    await c.query(
      `select coalesce((select max(extract(epoch from clock_timestamp() - l.waitstart) * 1000)
                          from pg_locks l join pg_stat_activity a on a.pid = l.pid
                         where not l.granted and l.waitstart is not null and a.datname = current_database()
                           and a.application_name <> 'partition-switchover'), 0)::float8 as lock_wait_ms,
              coalesce((select max(extract(epoch from replay_lag) * 1000) from pg_stat_replication), 0)::float8 as lag_ms`,
    )
  ).rows[0] as { lock_wait_ms: number; lag_ms: number };
  if (b.maxLockWaitMs !== undefined && r.lock_wait_ms > b.maxLockWaitMs) {
    return `a session has waited ${Math.round(r.lock_wait_ms)} ms for a lock (maxLockWaitMs ${b.maxLockWaitMs})`;
  }
  if (b.maxReplicationLagMs !== undefined && r.lag_ms > b.maxReplicationLagMs) {
    return `replication lag ${Math.round(r.lag_ms)} ms (maxReplicationLagMs ${b.maxReplicationLagMs})`;
  }
  return null;
}
