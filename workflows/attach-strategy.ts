// The attach strategy's stages (activities/attach.ts), zero copy: the two unique indexes built
// concurrently, the empty parent with the new partitions and the CHECK validated (phase
// "prepare"), counts and bounds (phase "verify"), then the cutover that makes the table the
// history partition. Every wait, approval's too, ends an hour before the application's writes
// reach a cutoff (they would fail the CHECK from then until cutover). Deterministic workflow code.
import { ApplicationFailure, condition, patched } from '@temporalio/workflow';
import type { AttachTablePlan, Plan, TablePlan } from '../src/types';
import { CUTOFF_MARGIN_MS, cutoffDeadlineMs, humanDuration } from '../src/cutoff';
import type { Run } from './control';
import { LONG, cutoverOptions, opts } from './options';
import { acts, cutOver, type Stage } from './stages';

/** The plan of an attach stage's table (preflight plans every table of a run with the run's strategy). */
export function attached(tp: TablePlan): AttachTablePlan {
  if (!tp.attach) throw new Error(`${tp.table} has no attach plan`);
  return tp;
}

/** The attach table whose cutoff the application's writes reach first, and when (ms). */
function attachDeadline(plan: Plan): { tp: AttachTablePlan; at: number } | null {
  let first: { tp: AttachTablePlan; at: number } | null = null;
  for (const tp of plan.tables) {
    if (!tp.attach) continue;
    const at = cutoffDeadlineMs(tp.attach);
    if (!first || at < first.at) first = { tp, at };
  }
  return first;
}

/**
 * The switchover stopped by its cutoff while it waited (`who`: "nobody approved", "the switchover
 * stayed paused"); non-retryable, so the switchover rolls back and drops the CHECK.
 */
function cutoffFailure(d: { tp: AttachTablePlan; at: number }, who: string): ApplicationFailure {
  const { tp } = d;
  const a = tp.attach;
  const deadline = new Date(d.at).toISOString();
  return ApplicationFailure.create({
    type: 'StateConflict',
    message:
      `${who} before the attach cutoff ${a.cutoff} of ${tp.schema}.${tp.table} came within ${humanDuration(CUTOFF_MARGIN_MS)} ` +
      `(the application's writes reach it at ${deadline}): until cutover every write of ${tp.partitionKey} at or after ${a.cutoff} ` +
      `fails the CHECK ${a.check}, so the switchover stops before cutover and rolls back (which drops the CHECK). Start again (preflight picks a later cutoff) and approve within its window`,
    nonRetryable: true,
    details: [{ table: tp.table, cutoff: a.cutoff, deadline }],
  });
}

/**
 * Before each stage, table and step: waits out the operator's pause, but not past an hour before
 * the first cutoff's deadline; that reached (paused or not: slow stages), fails, and the
 * switchover rolls back (dropping the CHECK, if it was added) instead of adding or keeping a CHECK
 * that refuses the application's writes. A run recorded before this guard: as `run.unpaused()`.
 */
export async function unpausedBeforeCutoff(run: Run, plan: Plan): Promise<void> {
  const d = attachDeadline(plan);
  if (!d || !patched('attach-cutoff-deadline')) return run.unpaused();
  const left = () => d.at - CUTOFF_MARGIN_MS - Date.now();
  if (run.controls.paused && left() > 0) await condition(() => !run.controls.paused, left());
  if (left() <= 0) throw cutoffFailure(d, run.controls.paused ? 'the switchover stayed paused' : 'the switchover did not reach its cutover');
}

/** The empty parent with the partitions from the cutoff on (the rehearsal's phase 2 makes only this). */
export const parent: Stage<number> = {
  phase: 'prepare',
  wait: unpausedBeforeCutoff,
  async forward(run, table) {
    const tp = attached(table);
    const r = await acts.attachParent.executeWithOptions(
      opts(`prepare ${tp.table}: ${tp.names.partitioned} with ${tp.attach.partitions.length} ${tp.interval} partitions from ${tp.attach.cutoff}`),
      [run.input.database, tp, run.input.lockTimeoutMs],
    );
    return r.partitions;
  },
};

/** Per table: the unique indexes on (primary key..., key) and on the primary key CONCURRENTLY, the parent, then the CHECK NOT VALID and VALIDATE. */
export const prepare: Stage = {
  phase: 'prepare',
  wait: unpausedBeforeCutoff,
  async forward(run, table, plan) {
    const tp = attached(table);
    const db = run.input.database;
    await acts.attachIndexes.executeWithOptions(
      opts(`index ${tp.table}: unique (${tp.partitionedKey.join(', ')}) and unique (${tp.primaryKey.join(', ')}) concurrently`, LONG),
      [db, tp],
    );
    await unpausedBeforeCutoff(run, plan);
    await parent.forward(run, tp, plan);
    await unpausedBeforeCutoff(run, plan);
    await acts.attachCheck.executeWithOptions(opts(`check ${tp.table}: ${tp.partitionKey} < ${tp.attach.cutoff} NOT VALID, then VALIDATE`, LONG), [
      db,
      tp,
      run.input.lockTimeoutMs,
    ]);
  },
};

/** Counts and bounds: no row outside FROM (MINVALUE) TO (cutoff), the CHECK and the indexes valid; anything else fails and rolls back. */
export const verify: Stage<string | null> = {
  phase: 'verify',
  wait: unpausedBeforeCutoff,
  async forward(run, table) {
    const tp = attached(table);
    const v = await acts.attachVerify.executeWithOptions(opts(`verify ${tp.table}: rows before ${tp.attach.cutoff}, CHECK and indexes valid`, LONG), [
      run.input.database,
      tp,
    ]);
    run.record({ stage: 'ATTACH-VERIFY', table: tp.table, rows: v.rows, sums: {}, ms: v.ms, at: new Date().toISOString() });
    return v.ok ? null : `${tp.table}: ${v.problems.join('; ')}`;
  },
  check(run, _plan, problems) {
    run.refresh();
    const bad = problems.filter((p) => p !== null);
    if (!bad.length) return;
    throw ApplicationFailure.create({
      type: 'ParityMismatch',
      message: `verification failed: ${bad.join('. ')}. The table is unchanged but for our CHECK and indexes, which the rollback drops; start again.`,
      nonRetryable: true,
    });
  },
};

/** One short transaction per table under lock_timeout, retried with backoff: the table becomes the history partition. */
export const cutover: Stage = {
  phase: 'cutover',
  wait: unpausedBeforeCutoff,
  async forward(run, table) {
    const tp = attached(table);
    const a = tp.attach;
    const summary = `cutover ${tp.table}: attach as ${a.history} FROM (MINVALUE) TO (${a.cutoff}), ${a.partitions.length} new partitions`;
    cutOver(
      run,
      tp.table,
      await acts.attachCutover.executeWithOptions(opts(summary, cutoverOptions(run.window.deadline)), [run.input.database, tp, run.input.lockTimeoutMs]),
    );
  },
};

/** Waits up to `timeoutMs` for a decision, but not past an hour before the first cutoff's deadline (runs recorded before this guard: the whole timeout). */
export async function awaitDecision(run: Run, plan: Plan, timeoutMs: number): Promise<boolean> {
  const deadline = attachDeadline(plan);
  const guarded = deadline !== null && patched('attach-cutoff-deadline');
  const byDeadline = guarded ? deadline.at - CUTOFF_MARGIN_MS - Date.now() : Infinity;
  const decided = byDeadline <= 0 ? run.decision !== undefined : await condition(() => run.decision !== undefined, Math.min(timeoutMs, byDeadline));
  if (!decided && guarded && deadline.at - CUTOFF_MARGIN_MS - Date.now() <= 0) throw cutoffFailure(deadline, 'nobody approved');
  return decided;
}

/** What stays in place when nobody approved in time and approval.onTimeout is "fail". */
export function leftInPlace(plan: Plan): string {
  const checks = plan.tables.map((t) => attached(t)).map((t) => `${t.attach.check} on ${t.table}: ${t.attach.cutoff}`);
  return (
    `The CHECKs refusing rows at or after the cutoff (${checks.join(', ')}), our indexes and ` +
    `${plan.tables.map((t) => t.names.partitioned).join(', ')} are still in place, and the cutoff's window has passed`
  );
}
