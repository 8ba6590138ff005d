// What the rehearsal's phases share: its input, the switchover input it derives, the run its
// stages work on, what earlier phases found, and the live writer it steers (phases 5 to 8).
// Deterministic workflow code: no I/O.
import { proxyActivities, type ChildWorkflowHandle } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { WriterControl, WriterPlans } from '../../activities/writer';
import type { RehearsalInput, SwitchoverInput } from '../../src/input';
import type { RehearsalReport, RehearsalStatus, SmokeAnswer, SmokeItem, SmokePlan, TableSizes, WriterReport } from '../../src/rehearsal-report';
import type { TablePlan } from '../../src/types';
import type { SwitchoverReport } from '../../src/reports';
import type { Run, Tracked } from '../control';
import { STEP, WRITER, WRITER_ORDER, opts } from '../options';
import type { Strategy } from '../strategies';
import { errorMessage } from '../util';

export const acts = proxyActivities<Activities>(STEP);

export interface Ctx {
  id: string;
  input: RehearsalInput;
  /** The switchover child's input: the rehearsal's own switchover fields, approval given by the rehearsal. */
  sw: SwitchoverInput;
  strategy: Strategy;
  /** The rehearsal's own tracking: its phases, status and details. */
  tracked: Tracked;
  /** The switchover's stages as the rehearsal runs them (phases 2 and 3), under its own phases and status. */
  run: Run;
  state: RehearsalStatus;
  plans: TablePlan[];
  /** Set once the rehearsal has changed staging (then a failure restores it). */
  touched: boolean;
  smoke: SmokeItem[];
  smokeNotes: string[];
  before?: { answers: SmokeAnswer[]; plans: SmokePlan[]; unpruned?: SmokePlan[] };
  /** The application's frequent statements that will not prune (pg_stat_statements), EXPLAINed before and after cutover in phase 7. */
  unpruned: SmokeItem[];
  unprunedNotes: string[];
  child?: { handle: ChildWorkflowHandle<never>; result: Promise<SwitchoverReport>; done: boolean };
  switchover?: SwitchoverReport;
  sizes: TableSizes[];
  writer?: { done: Promise<WriterReport>; settled: boolean; seq: number; report?: WriterReport; error?: string };
  /** Why the load could not run at all (no operation of the mix on any table). */
  loadSkipped?: string[];
  /** Tables the load generator could not plan (the load ran on the others). */
  loadUnplanned: string[];
  forecast?: RehearsalReport['forecast'];
  /** Phases recorded as audit rows. */
  audited: Set<number>;
  failedPhase?: RehearsalReport['failedPhase'];
  restore?: RehearsalReport['restore'];
  refresh(): void;
}

/** Starts the live writer on the planned tables; it runs until told to stop. */
export function startWriter(ctx: Ctx, plans: WriterPlans['plans']): void {
  const load = ctx.input.load!;
  const done = acts.runWriter.executeWithOptions(opts(`live writer on ${ctx.input.database}: ${load.ratePerSec} ops/s on ${plans.length} table(s)`, WRITER), [
    ctx.input.database,
    ctx.input.schema,
    plans,
    load,
  ]);
  const w: NonNullable<Ctx['writer']> = { done, settled: false, seq: 0 };
  done.then(
    (r) => Object.assign(w, { settled: true, report: r }),
    (err) => Object.assign(w, { settled: true, error: errorMessage(err) }),
  );
  ctx.writer = w;
  ctx.state.rehearsal.writer = { state: 'running', ops: 0, failures: 0, errors: [] };
}

/** Orders the live writer to run, pause or stop; its writes from now on count under `label`. */
export async function steer(ctx: Ctx, state: WriterControl['state'], label: string): Promise<void> {
  const w = ctx.writer!;
  if (w.settled) throw new Error(`the live writer is not running (${w.error ?? 'it ended'})`);
  const a = await acts.writerControl.executeWithOptions(opts(`live writer: ${state} (${label})`, WRITER_ORDER), [
    ctx.input.database,
    ctx.input.schema,
    { state, label, seq: ++w.seq },
  ]);
  ctx.state.rehearsal.writer = { state, ops: a.ops, failures: a.failures, errors: a.errors ?? [] };
  ctx.refresh();
}

export async function stopWriter(ctx: Ctx): Promise<WriterReport> {
  const w = ctx.writer!;
  if (!w.settled) await steer(ctx, 'stopped', 'stopped');
  const r = await w.done;
  ctx.state.rehearsal.writer = { state: 'stopped', ops: r.writes + r.failedWrites, failures: r.failedWrites, errors: r.firstError ? [r.firstError] : [] };
  return r;
}

/** Runs `fn` with the load paused (its ops in flight done), so a comparison sees a quiet table. */
export async function quiet<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  if (!ctx.writer) return fn();
  await steer(ctx, 'paused', 'after');
  const out = await fn();
  await steer(ctx, 'running', 'after');
  return out;
}
