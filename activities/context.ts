// What every activity shares: the worker's pools, the current workflow id, audit records,
// and a heartbeat kept alive while one long statement runs.
import { CancelledFailure, Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, type Pools } from '../src/db';
import { classify } from '../src/errors';
import type { Checksum, StageRecord, TablePlan } from '../src/types';
import { checksumSql } from '../src/sqlgen';

export interface Deps {
  pools: Pools;
}

/** An activity written as a plain function of the worker's deps and its own arguments. */
type WithDeps = (deps: Deps, ...args: any[]) => Promise<unknown>;
/** The same activities as the worker registers them: deps bound, the workflow's arguments left. */
export type Bound<T extends Record<string, WithDeps>> = {
  [K in keyof T]: T[K] extends (deps: Deps, ...args: infer A) => infer R ? (...args: A) => R : never;
};

/**
 * A module's activities, each a top-level function `(deps, ...args)`, bound to the worker's deps:
 * `export const copyActivities = (deps: Deps) => bindDeps(deps, { copyRange })`.
 */
export function bindDeps<T extends Record<string, WithDeps>>(deps: Deps, fns: T): Bound<T> {
  return Object.fromEntries(Object.entries(fns).map(([name, fn]) => [name, (...args: unknown[]) => fn(deps, ...args)])) as Bound<T>;
}

export function workflowId(): string {
  return Context.current().info.workflowExecution!.workflowId;
}

/** The run: stage markers are keyed by it, so a second run under the same workflow id starts afresh. */
export function runId(): string {
  return Context.current().info.workflowExecution!.runId;
}

/** Runs `fn`, heartbeating every few seconds so a dead worker is noticed while a statement runs. */
export async function keepAlive<T>(fn: () => Promise<T>, details?: unknown): Promise<T> {
  const ctx = Context.current();
  // At once too: a loop of statements each shorter than the interval must still heartbeat.
  ctx.heartbeat(details);
  const timer = setInterval(() => ctx.heartbeat(details), 3000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
    // Cancelled (reject, workflow cancel) while the statement ran: stop before the next one.
    throwIfCancelled();
  }
}

/** Throws the cancellation (a CancelledFailure) once the activity has been cancelled. */
export function throwIfCancelled(): void {
  const signal = Context.current().cancellationSignal;
  if (signal.aborted) throw signal.reason ?? new CancelledFailure('activity cancelled');
}

/** Wraps an activity body so pg errors become typed failures (transient ones stay retryable). */
export async function stage<T>(name: string, table: string | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classify(err, { stage: name, table });
  }
}

export function toChecksum(row: Record<string, unknown>, tp: TablePlan): Checksum {
  const sums: Record<string, string> = {};
  for (const c of tp.sumColumns) sums[c] = String(row[`sum_${c}`]);
  return { rows: Number(row.rows), sums, rowHash: String(row.row_hash) };
}

export async function checksum(db: pg.ClientBase, tp: TablePlan, table: string): Promise<Checksum> {
  return toChecksum((await db.query(checksumSql(tp, table))).rows[0], tp);
}

/** Upserts the audit row of (workflow, run, table, stage): a retried stage overwrites its own row. */
export async function audit(
  db: pg.ClientBase,
  rec: { schema: string; table: string; stage: string; checksum?: Checksum; ms?: number; details?: unknown },
): Promise<StageRecord> {
  const row = (
    await db.query(sqlFile('bookkeeping/audit'), [
      workflowId(),
      rec.schema,
      rec.table,
      rec.stage,
      rec.checksum?.rows ?? null,
      JSON.stringify(rec.checksum?.sums ?? {}),
      rec.checksum?.rowHash ?? null,
      rec.ms === undefined ? null : Math.round(rec.ms),
      JSON.stringify(rec.details ?? {}),
      runId(),
    ])
  ).rows[0];
  return {
    stage: rec.stage,
    table: rec.table,
    rows: rec.checksum?.rows ?? 0,
    sums: rec.checksum?.sums ?? {},
    rowHash: rec.checksum?.rowHash,
    ms: Math.round(rec.ms ?? 0),
    at: new Date(row.at).toISOString(),
  };
}
