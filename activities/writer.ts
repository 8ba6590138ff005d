// The live writer (src/tableload.ts on the input's tables) as a long activity of the rehearsal, and how the workflow steers
// it. The connection string is resolved here, in the worker, from the target's name. The workflow
// cannot message a running activity, so it writes the wanted state (running/paused/stopped) as
// an audit row; the writer polls it, applies it and acknowledges in another audit row, which
// works whichever worker runs which activity.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import type { RehearsalInput } from '../src/input';
import { DEFAULT_LOAD_MIX, planLoad, startLoad, type LoadKind, type LoadMix, type TableLoadPlan } from '../src/tableload';
import type { WriterReport } from '../src/rehearsal-report';
import type { SwitchoverStatus } from '../src/status';
import { audit, bindDeps, Deps, workflowId } from './context';

export interface WriterControl {
  state: 'running' | 'paused' | 'stopped';
  /** Latency segment the writer's ops count under from now on. */
  label: string;
  /** Increases with every order, so a retried writer knows what it has applied. */
  seq: number;
}
export interface WriterAck extends WriterControl {
  ops: number;
  failures: number;
  /** The first distinct failures, `kind: message (SQLSTATE)`. */
  errors: string[];
}

const WRITER_TABLE = '(writer)';
const CONTROL = 'WRITER-CONTROL';
const ACK = 'WRITER';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function readRow<T>(c: pg.ClientBase, schema: string, stageName: string): Promise<T | undefined> {
  const r = await c.query(sqlFile('bookkeeping/audit_details'), [workflowId(), schema, WRITER_TABLE, stageName]);
  return r.rows[0]?.details as T | undefined;
}

/** The load's plans, made on the plain tables before the switchover, and what of the mix cannot run. */
export interface WriterPlans {
  plans: TableLoadPlan[];
  /** `schema.table kind: reason` of every operation with a weight in the mix that cannot run. */
  skipped: string[];
  /** Whether any operation of the mix can run on any table. */
  runnable: boolean;
  /** `schema.table: reason` of tables the generator could not plan at all (also in `skipped`). */
  unplanned: string[];
}

/**
 * Plans the load on each table (read only); run before the switchover, on the plain tables.
 * `before`: per table, the day its keys stay before (the attach strategy's cutoff).
 */
export async function planWriterLoad(
  { pools }: Deps,
  database: string,
  schema: string,
  tables: RehearsalInput['tables'],
  mix?: LoadMix,
  before?: Record<string, string>,
): Promise<WriterPlans> {
  const pool = pools.get(database);
  const skipped: string[] = [];
  const unplanned: string[] = [];
  const plans = await withClient(pool, async (c) => {
    const out: TableLoadPlan[] = [];
    for (const t of tables) {
      // A table the generator cannot plan is left out with the reason, not a failed rehearsal.
      await planLoad(c, { schema, table: t.table, partitionKey: t.partitionKey, interval: t.interval, before: before?.[t.table] }).then(
        (p) => void out.push(p),
        (err: Error) => void unplanned.push(`${schema}.${t.table}: ${err.message}`),
      );
    }
    return out;
  });
  skipped.push(...unplanned);
  const weights = { ...DEFAULT_LOAD_MIX, ...mix };
  let runnable = false;
  for (const p of plans) {
    for (const kind of Object.keys(weights) as LoadKind[]) {
      if (!(weights[kind] > 0)) continue;
      const op = p[kind];
      if (op.ok) runnable = true;
      else skipped.push(`${p.schema}.${p.table} ${kind}: ${op.reason}`);
    }
  }
  return { plans, skipped, runnable, unplanned };
}

/** Runs the load on `plans` against `database` until told to stop (or the workflow goes away). */
export async function runWriter(
  { pools }: Deps,
  database: string,
  schema: string,
  plans: TableLoadPlan[],
  load: NonNullable<RehearsalInput['load']>,
): Promise<WriterReport> {
  const pool = pools.get(database);
  const connectionString = pool.options.connectionString;
  if (!connectionString) throw fail('StateConflict', `database target "${database}" has no connection string the writer can use`);
  const ctx = Context.current();
  const handle = await startLoad(connectionString, plans, { ratePerSec: load.ratePerSec, concurrency: load.concurrency, mix: load.mix, segment: 'copy' });
  let applied: WriterControl = { state: 'running', label: 'copy', seq: -1 };
  const ack = (ctl: WriterControl) => {
    const r = handle.summary();
    const details: WriterAck = { ...ctl, ops: r.writes + r.failedWrites, failures: r.failedWrites, errors: r.firstError ? [r.firstError] : [] };
    return withClient(pool, (c) => audit(c, { schema, table: WRITER_TABLE, stage: ACK, details }));
  };
  let summary;
  try {
    while (!ctx.cancellationSignal.aborted) {
      const control = await withClient(pool, (c) => readRow<WriterControl>(c, schema, CONTROL)).catch(() => undefined);
      if (control && control.seq !== applied.seq) {
        if (control.state === 'stopped') {
          applied = control;
          break;
        }
        if (control.state === 'paused') {
          await handle.pause();
        } else {
          handle.mark(control.label);
          handle.resume();
        }
        applied = control;
        await ack(applied);
      }
      const r = handle.summary();
      ctx.heartbeat({ writes: r.writes, failedWrites: r.failedWrites });
      await sleep(100);
    }
  } finally {
    summary = await handle.stop();
  }
  await ack({ ...applied, state: 'stopped' }).catch(() => undefined);
  const { committed: _committed, ...report } = summary;
  return report;
}

/** Orders the writer into a state and waits until it says it is there (paused: its ops in flight are done). */
export async function writerControl({ pools }: Deps, database: string, schema: string, control: WriterControl): Promise<WriterAck> {
  const pool = pools.get(database);
  const ctx = Context.current();
  await withClient(pool, (c) => audit(c, { schema, table: WRITER_TABLE, stage: CONTROL, details: control }));
  for (;;) {
    const a = await withClient(pool, (c) => readRow<WriterAck>(c, schema, ACK));
    if (a && a.seq >= control.seq && (a.state === control.state || a.state === 'stopped')) return a;
    ctx.heartbeat();
    await ctx.sleep(100); // rejects when the activity is cancelled (worker shutdown, workflow gone)
  }
}

/** Polls another workflow's `status` query until its phase is one of `phases`; returns that phase. */
export async function waitForWorkflowPhase(_deps: Deps, targetWorkflowId: string, phases: string[]): Promise<string> {
  const ctx = Context.current();
  const handle = ctx.client.workflow.getHandle(targetWorkflowId);
  for (;;) {
    const s = await handle.query<SwitchoverStatus>('status').catch(() => undefined);
    if (s && phases.includes(s.phase)) return s.phase;
    ctx.heartbeat(s?.phase);
    await ctx.sleep(250);
  }
}

export const writerActivities = (deps: Deps) => bindDeps(deps, { planWriterLoad, runWriter, writerControl, waitForWorkflowPhase });
