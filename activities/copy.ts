// The copy: server-side batches (INSERT ... SELECT, no row through Node), each batch one
// transaction that also records the stream's position, so a retry resumes after the last
// committed batch. Progress goes to the workflow as a bounded number of signals
// (activities/copy-progress.ts); before each batch the stream may wait (activities/copy-brake.ts).
// A table with an integer key is copied in ranges of that key (src/copysql.ts says why);
// others in keyset batches. Mode "lock" locks each batch's rows FOR SHARE; mode "recheck" does
// not, and copyRecheck (activities/recheck.ts) repairs what raced a writer.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { controlsQuery, progressSignal } from '../src/shared';
import { copyBatchSql, OUR_WRITE_SQL } from '../src/sqlgen';
import { nextKeySql, rangeBatchSql, splitBoundsSql } from '../src/copysql';
import { DEFAULT_COPY_MODE, type CopyMode, type Throttle } from '../src/input';
import { switchoverMetrics } from '../src/metrics';
import type { CopyResult, CopyStream, TablePlan } from '../src/types';
import { bindDeps, Deps, stage, throwIfCancelled, workflowId } from './context';
import { ProgressReporter, type StreamPosition } from './copy-progress';
import { Brake, copyGateKey, LiveControls } from './copy-brake';

export interface CopyOpts {
  batchSize: number;
  pauseMs: number;
  estimatedRows: number;
  /** Absent only in calls recorded before copy modes existed: the input's default then, as the workflow's. */
  mode?: CopyMode;
  /** The brake's bounds (input.throttle); unset bounds are not checked. */
  brake?: Pick<Throttle, 'maxBatchMs' | 'maxLockWaitMs' | 'maxReplicationLagMs' | 'brakePauseMs' | 'adaptive'>;
}

/** The stream's row in partition_switchover.copy_progress: whose it is. */
interface StreamKey {
  wf: string;
  runId: string;
  table: string;
  stream: number;
}

export async function copyRange({ pools }: Deps, database: string, tp: TablePlan, s: CopyStream, opts: CopyOpts): Promise<CopyResult> {
  const ctx = Context.current();
  const key: StreamKey = { wf: workflowId(), runId: ctx.info.workflowExecution!.runId, table: tp.table, stream: s.stream };
  const metrics = switchoverMetrics({ table: tp.table, stream: s.stream });
  metrics.throttlePause.set(opts.pauseMs);
  metrics.batchSize.set(opts.batchSize);
  return stage('copy', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const saved = (await c.query(sqlFile('bookkeeping/copy_position'), [key.wf, key.runId, key.table, key.stream])).rows[0];
      const pos: StreamPosition = { cursor: saved?.cursor ?? null, copied: Number(saved?.rows_copied ?? 0), batches: Number(saved?.batches ?? 0) };
      const resumedFrom = pos.cursor;
      const handle = () => ctx.client.workflow.getHandle(key.wf);
      const controls = new LiveControls(
        opts,
        () => ctx.client.withDeadline(Date.now() + 5000, () => handle().query(controlsQuery, tp.table, s.stream)),
        metrics,
      );
      const progress = new ProgressReporter(
        { table: tp.table, stream: s.stream, estimatedRows: opts.estimatedRows },
        pos,
        metrics,
        (p) => handle().signal(progressSignal, p),
        t0,
      );
      const busyBelow = async () =>
        (await c.query(sqlFile('bookkeeping/copy_streams_busy_below'), [key.wf, key.runId, key.table, key.stream])).rows[0].busy as number;
      const brake = new Brake(c, { controls, progress, pos, stream: { table: tp.table, stream: s.stream, gate: copyGateKey(key.runId, tp.table), busyBelow } });
      await brake.calibrate();
      const run = new StreamCopy(c, tp, s, key, (opts.mode ?? DEFAULT_COPY_MODE) === 'lock', pos, { controls, progress, brake, metrics });
      if (!saved?.done) await (tp.splitColumn ? run.ranges() : run.keyset());
      await progress.report(true);
      return { table: tp.table, stream: s.stream, rowsCopied: pos.copied, batches: pos.batches, resumedFrom, ms: Date.now() - t0, brakes: progress.brakes };
    }),
  );
}

export const copyActivities = (deps: Deps) => bindDeps(deps, { copyRange });

type Batch = { rows: number; inserted: number; last?: string[] };
/** One batch: its statement (`retry`: after a unique violation), the position after it, and whether it ends the stream. */
interface BatchStep {
  run: (retry: boolean) => Promise<Batch>;
  next: (r: Batch) => string[] | null;
  isDone: (r: Batch) => boolean;
}

/** The batches of one stream, each brake → batch → progress. */
class StreamCopy {
  private readonly ctx = Context.current();

  constructor(
    private readonly c: pg.ClientBase,
    private readonly tp: TablePlan,
    private readonly s: CopyStream,
    private readonly key: StreamKey,
    private readonly lock: boolean,
    private readonly pos: StreamPosition,
    private readonly by: { controls: LiveControls; progress: ProgressReporter; brake: Brake; metrics: ReturnType<typeof switchoverMetrics> },
  ) {}

  /**
   * Range batches [a, b] of the integer key (inclusive: the last one may end at the type's
   * maximum, where an exclusive bound would overflow); the cursor is the next range's start.
   * Open ends take the key's bounds now: rows added after the triggers came are theirs.
   */
  async ranges(): Promise<void> {
    const { c, tp, s } = this;
    const bounds = (await c.query(splitBoundsSql(tp))).rows[0] as { min: string | null; max: string | null };
    const cursor = this.pos.cursor;
    let a = cursor ? BigInt(cursor[0]) : s.lo !== null ? BigInt(s.lo) : bounds.min !== null ? BigInt(bounds.min) : 0n;
    // Last key of the stream; below `a` when there is nothing to copy (one empty batch marks it done).
    const last = s.hi !== null ? BigInt(s.hi) - 1n : bounds.max !== null ? BigInt(bounds.max) : a - 1n;
    for (;;) {
      await this.by.brake.wait();
      const step = BigInt(this.by.controls.current.batchSize);
      const b = a + step - 1n < last ? a + step - 1n : last;
      const r = await this.batch({
        // What it inserted stands for what it read: a range the trigger filled reads as empty, so
        // the cursor waits for the next batch and the next key is looked up, both harmless.
        run: async (retry) => {
          const inserted = await prepared(c, rangeBatchSql(tp, { lock: this.lock, onConflict: retry }), [String(a), String(b)]);
          return { rows: inserted, inserted };
        },
        next: () => [String(b + 1n)],
        isDone: () => b >= last,
      });
      if (b >= last) break;
      a = b + 1n;
      if (r.rows === 0) {
        // A gap in the key: jump to the next key that exists (or to the last, which ends the stream).
        const n = (await c.query(nextKeySql(tp), [String(a)])).rows[0].next as string | null;
        a = n === null || BigInt(n) > last ? last : BigInt(n);
      }
      await this.afterBatch();
    }
  }

  /** Keyset batches: the cursor is the last row's key. */
  async keyset(): Promise<void> {
    const { c, tp, s } = this;
    for (;;) {
      await this.by.brake.wait();
      const cursor = this.pos.cursor;
      const params: unknown[] = [...(cursor ?? [])];
      if (s.lo !== null) params.push(s.lo);
      if (s.hi !== null) params.push(s.hi);
      params.push(this.by.controls.current.batchSize);
      const text = copyBatchSql(tp, { withCursor: cursor !== null, lo: s.lo !== null, hi: s.hi !== null, lock: this.lock });
      const r = await this.batch({
        run: async () => (await c.query(text, params)).rows[0],
        next: (x) => (x.rows > 0 ? (x.last as string[]) : null),
        isDone: (x) => x.rows === 0,
      });
      if (r.rows === 0) break;
      await this.afterBatch();
    }
  }

  /** One batch in its own transaction, with the stream's position; returns rows seen. */
  private async batch(step: BatchStep): Promise<Batch> {
    const t1 = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const { r, at } = await inTx(this.c, () => this.batchTx(step, attempt > 0));
        Object.assign(this.pos, at);
        if (r.inserted > 0) this.by.metrics.rowsCopied.add(r.inserted);
        this.by.brake.batchTook(Date.now() - t1);
        return r;
      } catch (err) {
        if ((err as { code?: string }).code === '23505' && attempt < 3) continue;
        throw err;
      }
    }
  }

  private async batchTx(step: BatchStep, retry: boolean): Promise<{ r: Batch; at: StreamPosition }> {
    const { c, key, pos } = this;
    // Through the table's gate, which a stream closes to measure its probe with the copy quiet.
    await c.query(sqlFile('session/copy_gate_pass'), [copyGateKey(key.runId, key.table)]);
    // No wait for the WAL flush at each batch's commit: a crash can lose only the last
    // batches together with their recorded position (one transaction), so the retry
    // copies them again; any later synchronous commit (a writer's) flushes them first.
    await c.query(sqlFile('session/async_commit'));
    // Our own writes to the partitioned copy: not recorded as direct writes (sql/state.sql).
    await c.query(OUR_WRITE_SQL);
    // A unique violation means a trigger insert committed after our snapshot: the
    // retry sees it (and ON CONFLICT covers one that commits while we retry).
    const r = await step.run(retry);
    const done = step.isDone(r);
    // The stream's position moves only once this transaction commits.
    const moved = r.rows > 0 || done;
    const at = {
      cursor: moved ? (step.next(r) ?? pos.cursor) : pos.cursor,
      copied: pos.copied + (moved ? r.inserted : 0),
      batches: pos.batches + (r.rows > 0 ? 1 : 0),
    };
    await c.query(sqlFile('bookkeeping/copy_progress'), [key.wf, key.runId, key.table, key.stream, at.cursor, at.copied, at.batches, done]);
    return { r, at };
  }

  private async afterBatch(): Promise<void> {
    this.ctx.heartbeat({ ...this.pos });
    await this.by.progress.report(false);
    const pauseMs = this.by.controls.current.pauseMs;
    if (pauseMs > 0) await this.ctx.sleep(pauseMs);
    throwIfCancelled();
  }
}

/** Runs `text` as a named prepared statement (planned once per connection; the name is its hash); returns its row count. */
async function prepared(c: pg.ClientBase, text: string, values: unknown[]): Promise<number> {
  const name = `ps_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
  return (await c.query({ name, text, values })).rowCount ?? 0;
}
