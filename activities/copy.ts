// The copy: server-side keyset batches (INSERT ... SELECT, no row through Node), each batch one
// transaction that also records the stream's position, so a retry resumes after the last
// committed batch. Progress goes to the workflow as a bounded number of signals.
import { Context } from '@temporalio/activity';
import { withClient } from '../src/db';
import { progressSignal } from '../src/shared';
import { copyBatchSql } from '../src/sqlgen';
import { switchoverMetrics } from '../src/metrics';
import type { CopyProgress, CopyResult, CopyStream, TablePlan } from '../src/types';
import { Deps, stage, workflowId } from './context';

export function copyActivities({ pools }: Deps) {
  return {
    async copyRange(
      database: string,
      tp: TablePlan,
      s: CopyStream,
      opts: { batchSize: number; pauseMs: number; estimatedRows: number },
    ): Promise<CopyResult> {
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
              `select cursor, rows_copied, batches, done from partition_switchover.copy_progress
               where workflow_id = $1::text and run_id = $2::text and table_name = $3::text and stream = $4::int`,
              [wf, runId, tp.table, s.stream],
            )
          ).rows[0];
          let cursor: string[] | null = saved?.cursor ?? null;
          let copied = Number(saved?.rows_copied ?? 0);
          let batches = Number(saved?.batches ?? 0);
          const resumedFrom = cursor;
          const startRows = copied;
          let lastSignal = 0;
          let lastBucket = -1;
          const report = async (done: boolean) => {
            const rate = (copied - startRows) / Math.max(0.001, (Date.now() - t0) / 1000);
            metrics.copyRate.set(done ? 0 : rate);
            const bucket = Math.floor((10 * copied) / Math.max(1, opts.estimatedRows));
            if (!done && (bucket === lastBucket || Date.now() - lastSignal < 2000)) return;
            lastSignal = Date.now();
            lastBucket = bucket;
            const p: CopyProgress = { table: tp.table, stream: s.stream, rowsCopied: copied, rowsPerSec: Math.round(rate), cursor, done };
            // Progress is best effort: a closed or unreachable workflow must not fail the copy.
            await ctx.client.workflow.getHandle(wf).signal(progressSignal, p).catch(() => undefined);
          };
          while (!saved?.done) {
            const params: unknown[] = [...(cursor ?? [])];
            if (s.lo !== null) params.push(s.lo);
            if (s.hi !== null) params.push(s.hi);
            params.push(opts.batchSize);
            const text = copyBatchSql(tp, { withCursor: cursor !== null, lo: s.lo !== null, hi: s.hi !== null });
            await c.query('BEGIN');
            try {
              const r = (await c.query(text, params)).rows[0];
              if (r.rows > 0) {
                cursor = r.last as string[];
                copied += r.inserted;
                batches++;
              }
              await c.query(
                `insert into partition_switchover.copy_progress (workflow_id, run_id, table_name, stream, cursor, rows_copied, batches, done)
                 values ($1::text, $2::text, $3::text, $4::int, $5::text[], $6::bigint, $7::int, $8::boolean)
                 on conflict (workflow_id, run_id, table_name, stream) do update
                   set cursor = excluded.cursor, rows_copied = excluded.rows_copied, batches = excluded.batches,
                       done = excluded.done, updated_at = now()`,
                [wf, runId, tp.table, s.stream, cursor, copied, batches, r.rows === 0],
              );
              await c.query('COMMIT');
              if (r.inserted > 0) metrics.rowsCopied.add(r.inserted);
              if (r.rows === 0) break;
            } catch (err) {
              await c.query('ROLLBACK').catch(() => undefined);
              throw err;
            }
            ctx.heartbeat({ cursor, copied, batches });
            await report(false);
            if (opts.pauseMs > 0) await ctx.sleep(opts.pauseMs);
            if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('copy cancelled');
          }
          await report(true);
          return { table: tp.table, stream: s.stream, rowsCopied: copied, batches, resumedFrom, ms: Date.now() - t0 };
        }),
      );
    },
  };
}
