// The switchover's stages as the workflow runs them, one function each, in runbook order. Each
// schedules its stage's activities (activities/<stage>.ts) table by table and records what they
// report. Deterministic workflow code: no I/O.
import { ActivityCancellationType, ActivityOptions, ApplicationFailure, RetryPolicy, condition, isCancellation, patched, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyStream, Plan, TablePlan, TableVerification } from '../src/types';
import { brakeOf, type Run, type Tracked } from './control';
import { SwitchoverPhase, SwitchoverTables } from '../src/shared';
import { copyStreamsFor, durationMs, errorMessage, ownFailure } from './util';
import { CUTOFF_MARGIN_MS, cutoffDeadlineMs, humanDuration } from '../src/cutoff';

const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };
/**
 * Every activity heartbeats every 2 s while it runs (activities/index.ts), so a lost worker is
 * noticed within HEARTBEAT_TIMEOUT in any stage, and a cancellation (reject, workflow cancel)
 * reaches it. The workflow waits until a cancelled activity has stopped before it rolls back.
 */
const HEARTBEAT_TIMEOUT = '10s';
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;
export const shortOpts: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: HEARTBEAT_TIMEOUT, cancellationType, retry };
/** Long stages also heartbeat with their position (each copy batch). */
const longOpts: ActivityOptions = { startToCloseTimeout: '24 hours', heartbeatTimeout: HEARTBEAT_TIMEOUT, cancellationType, retry };
/** Cutover: each attempt waits at most lock_timeout for its lock; Temporal backs off between attempts. */
const cutoverOpts: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 20 },
};
export const acts = proxyActivities<Activities>(shortOpts);
const longActs = proxyActivities<Activities>(longOpts);

/** Options with a summary naming the stage, table and range, so the history reads as a log. */
export function opts(summary: string, base: ActivityOptions = shortOpts): ActivityOptions {
  return { ...base, summary };
}

/** A copy stream's key range for its summary, inclusive: `id 1..500`, the last open-ended `id 501..1000+`. */
function streamRange(tp: TablePlan, s: CopyStream): string {
  if (!tp.splitColumn || !tp.splitRange) return 'all rows';
  const lo = s.lo ?? tp.splitRange.min;
  const hi = s.hi !== null ? String(BigInt(s.hi) - 1n) : `${tp.splitRange.max}+`;
  return `${tp.splitColumn} ${lo}..${hi}`;
}

/** Starts a stage: waits while paused, then enters its phase. */
async function enter(run: Run, phase: Parameters<Run['setPhase']>[0]) {
  await run.unpaused();
  run.setPhase(phase);
}

/** Search attributes, when the worker's server has them. */
export async function announce(run: Tracked) {
  run.searchAttributes = await acts.capabilities
    .executeWithOptions(opts(`start ${run.names.join(', ')}: worker capabilities (search attributes)`), [])
    .then((c) => c.searchAttributes);
  if (run.searchAttributes) {
    upsertSearchAttributes([
      { key: SwitchoverTables, value: run.names },
      { key: SwitchoverPhase, value: run.state.phase },
    ]);
  }
  run.refresh();
}

/** Catalog checks and the plan; a refusal fails the workflow with nothing changed. */
export async function preflight(run: Run): Promise<Plan> {
  const { input, names } = run;
  const plan = await acts.preflight
    .executeWithOptions(opts(`preflight ${names.join(', ')}: catalog checks and plan${input.dryRun ? ' (dry run)' : ''}`), [input])
    .catch((err) => {
      run.state.error = errorMessage(err);
      run.setPhase('failed');
      throw ownFailure(err);
    });
  run.state.plan = plan;
  for (const tp of plan.tables) run.table(tp.table);
  return plan;
}

/** The bookkeeping schema, one switchover per table (plans recorded), PRE-FLIGHT checksums. */
export async function claim(run: Run, plan: Plan) {
  const { names, input } = run;
  await acts.ensureState.executeWithOptions(opts(`state ${names.join(', ')}: bookkeeping schema partition_switchover in database ${input.database}`), [input.database]);
  run.undo = 'claim';
  await acts.claimTables.executeWithOptions(opts(`claim ${names.join(', ')}: one switchover per table, plans recorded`), [input.database, plan.tables]);
  run.undo = 'rollback';
  await run.unpaused();
  for (const tp of plan.tables) {
    run.record(await longActs.recordChecksum.executeWithOptions(opts(`checksum ${tp.table}: PRE-FLIGHT rows, sums and row hash`, longOpts), [input.database, tp, 'PRE-FLIGHT', tp.table]));
  }
}

export async function backup(run: Run, plan: Plan) {
  if (run.input.backup !== 'table') return;
  await enter(run, 'backup');
  for (const tp of plan.tables) {
    run.record(await longActs.backupTable.executeWithOptions(opts(`backup ${tp.table} → ${tp.names.backup}`, longOpts), [run.input.database, tp]));
  }
}

export async function prepare(run: Run, plan: Plan) {
  await enter(run, 'prepare');
  for (const tp of plan.tables) {
    const first = tp.partitions[0];
    const last = tp.partitions[tp.partitions.length - 1];
    const r = await longActs.prepareTable.executeWithOptions(
      opts(`prepare ${tp.table}: ${tp.names.partitioned} with ${tp.partitions.length} ${tp.interval} partitions ${first.from}..${last.to}`, longOpts),
      [run.input.database, tp],
    );
    run.table(tp.table).partitionsCreated = r.partitions;
  }
}

export async function triggers(run: Run, plan: Plan) {
  await enter(run, 'triggers');
  for (const tp of plan.tables) {
    await acts.installTriggers.executeWithOptions(opts(`triggers ${tp.table}: dual-write to ${tp.names.partitioned}`), [run.input.database, tp]);
  }
}

/** Per table: the copy streams in parallel, the re-check (mode "recheck"), then the secondary indexes and foreign keys. */
export async function copy(run: Run, plan: Plan) {
  await enter(run, 'copy');
  for (const tp of plan.tables) {
    run.state.progress[tp.table] = { table: tp.table, rowsCopied: 0, rowsEstimated: tp.rowsEstimated, rowsPerSec: 0, etaSeconds: null };
  }
  run.refresh();
  for (const tp of plan.tables) await copyTable(run, tp);
}

async function copyTable(run: Run, tp: TablePlan) {
  const { input, controls } = run;
  const db = input.database;
  await run.unpaused();
  const t0 = Date.now();
  // The live settings (retune applies to the next table; the copy reads them before each batch too).
  const streams = copyStreamsFor(tp, controls.parallelism);
  run.copyStreams.set(tp.table, streams.length);
  const runs = streams.map((s) =>
    longActs.copyRange
      .executeWithOptions(opts(`copy ${tp.table} ${streamRange(tp, s)} (stream ${s.stream + 1}/${streams.length})`, longOpts), [
        db,
        tp,
        s,
        { batchSize: controls.batchSize, pauseMs: controls.pauseMs, estimatedRows: Math.ceil(tp.rowsEstimated / streams.length), mode: input.copyMode, brake: brakeOf(controls) },
      ])
      .then((r) => {
        run.streamsDone.add(`${tp.table}/${s.stream}`);
        return r;
      }),
  );
  const results = await Promise.all(runs).catch(async (err) => {
    // Cancelled: the rollback starts only once every stream has stopped.
    if (isCancellation(err)) await Promise.allSettled(runs);
    throw err;
  });
  const rows = results.reduce((a, r) => a + r.rowsCopied, 0);
  const report = run.table(tp.table);
  report.copy = { rows, ms: Date.now() - t0, streams: results };
  // Mode "recheck": repair what the lock-free copy got wrong against racing writers.
  if (input.copyMode === 'recheck') {
    await run.unpaused();
    report.copy.recheck = await longActs.copyRecheck.executeWithOptions(
      opts(`copy ${tp.table}: re-check by hash per key range, repair differing rows under row lock`, longOpts),
      [db, tp, {}],
    );
  }
  await run.unpaused();
  report.copy.indexes = await longActs.buildIndexes.executeWithOptions(
    opts(`index ${tp.table}: secondary indexes per partition concurrently, foreign keys validated per partition, then attached`, longOpts),
    [db, tp, { parallelism: controls.parallelism, lockTimeoutMs: input.lockTimeoutMs }],
  );
  Object.assign(run.state.progress[tp.table], { rowsCopied: rows, rowsPerSec: 0, etaSeconds: 0 });
  run.refresh();
}

/** Counts, sums and row hashes per partition range; any difference fails (ParityMismatch) and rolls back. */
export async function verify(run: Run, plan: Plan) {
  await enter(run, 'verify');
  const verification: TableVerification[] = [];
  for (const tp of plan.tables) {
    const incremental = run.input.verify === 'incremental' && tp.changeLog === true;
    const what = incremental ? 'row counts, and every row written during the switchover compared row by row' : `counts, sums and row hashes per ${tp.interval}`;
    // Statistics are their own activity since the verification became incremental (a switchover
    // started before that analyzes inside verifyTable, as its history recorded).
    const apart = patched('analyze-apart');
    const args: Parameters<Activities['verifyTable']> = apart ? [run.input.database, tp, { mode: run.input.verify, analyze: false }] : [run.input.database, tp];
    const v = await longActs.verifyTable.executeWithOptions(opts(`verify ${tp.table}: ${what}`, longOpts), args);
    if (apart) await longActs.analyzeTable.executeWithOptions(opts(`analyze ${tp.table}: statistics of ${tp.names.partitioned} for the first queries after cutover`, longOpts), [run.input.database, tp]);
    verification.push(v);
    run.table(tp.table).verification = v;
    run.record({ stage: 'PRE-MIGRATION', table: tp.table, rows: v.legacy.rows, sums: v.legacy.sums, rowHash: v.legacy.rowHash, ms: v.ms, at: new Date().toISOString() });
    run.record({ stage: 'POST-MIGRATION', table: tp.table, rows: v.partitioned.rows, sums: v.partitioned.sums, rowHash: v.partitioned.rowHash, ms: v.ms, at: new Date().toISOString() });
  }
  run.state.verification = { ok: verification.every((v) => v.ok), tables: verification };
  run.refresh();
  const bad = verification.filter((v) => !v.ok);
  if (bad.length) {
    throw ApplicationFailure.create({
      type: 'ParityMismatch',
      message:
        `verification failed: ${bad.map((v) => `${v.table} differs in ${v.mismatches.map((m) => m.range).join(', ')}${v.sampleIds.length ? ` (ids ${v.sampleIds.join(', ')})` : ''}${v.escalated ? ` (every row compared: ${v.escalated.join('; ')})` : ''}`).join('; ')}. ` +
        `The legacy table is untouched and authoritative; compare those rows, then start again.`,
      nonRetryable: true,
      details: [{ stage: 'verify', tables: bad.map((v) => ({ table: v.table, ranges: v.mismatches.map((m) => m.range), sampleIds: v.sampleIds })) }],
    });
  }
}

/**
 * Waits for approve or reject (when required) and records the decision. Returns what stops the
 * switchover here (`rejected`, or `timed_out` with onTimeout "rollback"), or null to go on.
 */
export async function approval(run: Run, plan: Plan): Promise<'rejected' | 'timed_out' | null> {
  const { input, state } = run;
  if (input.approval.required) {
    if (!run.decision) state.approval = { state: 'waiting', since: new Date().toISOString(), approvers: input.approval.approvers };
    run.setPhase('awaiting_approval');
    const timeoutMs = durationMs(input.approval.timeout);
    let decided: boolean;
    if (input.strategy === 'attach') {
      // Attach: the wait ends, too, an hour before the application's writes reach a cutoff (they
      // would fail the CHECK from then until cutover). Runs recorded before this guard wait as they did.
      const deadline = attachDeadline(plan);
      const guarded = deadline !== null && patched('attach-cutoff-deadline');
      const byDeadline = guarded ? deadline.at - CUTOFF_MARGIN_MS - Date.now() : Infinity;
      decided = byDeadline <= 0 ? run.decision !== undefined : await condition(() => run.decision !== undefined, Math.min(timeoutMs, byDeadline));
      if (!decided && guarded && deadline.at - CUTOFF_MARGIN_MS - Date.now() <= 0) throw cutoffFailure(deadline, 'nobody approved');
    } else {
      // The rows written meanwhile are compared every approval.verifyEvery (runs recorded before: one wait).
      decided = patched('verify-written-while-waiting')
        ? await waitComparing(run, plan, timeoutMs)
        : await condition(() => run.decision !== undefined, timeoutMs);
    }
    if (!decided) {
      state.approval = { state: 'timed_out', at: new Date().toISOString() };
      if (input.approval.onTimeout === 'rollback') return 'timed_out';
      run.undo = 'leave';
      throw ApplicationFailure.create({
        type: 'ApprovalTimedOut',
        message:
          `nobody approved within ${input.approval.timeout}; the switchover stopped before cutover. ` +
          (input.strategy === 'attach'
            ? `The CHECKs refusing rows at or after the cutoff (${plan.tables.map((t) => `${t.attach!.check} on ${t.table}: ${t.attach!.cutoff}`).join(', ')}), our indexes and ` +
              `${plan.tables.map((t) => t.names.partitioned).join(', ')} are still in place, and the cutoff's window has passed: run the rollback workflow `
            : `The dual-write triggers and ${plan.tables.map((t) => t.names.partitioned).join(', ')} are still in place: run the rollback workflow `) +
          `(--type rollback --input '{"switchoverWorkflowId":"${workflowInfo().workflowId}"}') to remove them.`,
        nonRetryable: true,
      });
    }
    await auditDecision(run);
  }
  return run.decision === 'rejected' ? 'rejected' : null;
}

/**
 * Waits up to `timeoutMs` for a decision; every approval.verifyEvery meanwhile, compares the rows
 * written since the last comparison (plans with the change log) and forgets their log entries.
 * A difference fails the switchover at once (it rolls back), as verification does.
 */
async function waitComparing(run: Run, plan: Plan, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const every = durationMs(run.input.approval.verifyEvery);
  const logged = plan.tables.filter((tp) => tp.changeLog && !tp.attach);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    if (await condition(() => run.decision !== undefined, logged.length ? Math.min(left, every) : left)) return true;
    if (deadline - Date.now() <= 0) return false;
    for (const tp of logged) {
      const w = await acts.verifyWritten.executeWithOptions(opts(`verify ${tp.table}: rows written since the last comparison, while approval waits`), [
        run.input.database,
        tp,
        run.input.lockTimeoutMs,
      ]);
      run.state.written = { ...run.state.written, [tp.table]: w };
      run.refresh();
      if (!w.ok) {
        throw ApplicationFailure.create({
          type: 'ParityMismatch',
          message: `verification failed while waiting for approval: ${tp.table}: ${w.changes.join('; ')}. The legacy table is untouched and authoritative; compare those rows, then start again.`,
          nonRetryable: true,
          details: [{ stage: 'verify', table: tp.table, changes: w.changes }],
        });
      }
    }
  }
}

/**
 * Attach: the switchover stopped by its cutoff while it waited (`who`: "nobody approved", "the
 * switchover stayed paused"); non-retryable, so the switchover rolls back and drops the CHECK.
 */
function cutoffFailure(d: { tp: TablePlan; at: number }, who: string): ApplicationFailure {
  const { tp } = d;
  const a = tp.attach!;
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
 * Attach, before each of its stages and its cutover: waits out the operator's pause, but not past
 * an hour before the first cutoff's deadline; that reached (paused or not: slow stages), fails,
 * and the switchover rolls back (dropping the CHECK, if it was added) instead of adding or keeping
 * a CHECK that refuses the application's writes. A run recorded before this guard: as `run.unpaused()`.
 */
export async function unpausedBeforeCutoff(run: Run, plan: Plan): Promise<void> {
  const d = run.input.strategy === 'attach' ? attachDeadline(plan) : null;
  if (!d || !patched('attach-cutoff-deadline')) return run.unpaused();
  const left = () => d.at - CUTOFF_MARGIN_MS - Date.now();
  if (run.controls.paused && left() > 0) await condition(() => !run.controls.paused, left());
  if (left() <= 0) throw cutoffFailure(d, run.controls.paused ? 'the switchover stayed paused' : 'the switchover did not reach its cutover');
}

/** The attach table whose cutoff the application's writes reach first, and when (ms). */
function attachDeadline(plan: Plan): { tp: TablePlan; at: number } | null {
  let first: { tp: TablePlan; at: number } | null = null;
  for (const tp of plan.tables) {
    if (!tp.attach) continue;
    const at = cutoffDeadlineMs(tp.attach);
    if (!first || at < first.at) first = { tp, at };
  }
  return first;
}

/** The APPROVAL audit row: who decided, and in which phase when a reject stopped a running stage. */
export async function auditDecision(run: Run, extra: Record<string, unknown> = {}) {
  const { input, names, state } = run;
  await acts.recordEvent.executeWithOptions(opts(`audit ${names.join(', ')}: ${run.decision} by ${(state.approval as { by?: string }).by}`), [
    input.database,
    input.schema,
    names[0],
    'APPROVAL',
    { ...state.approval, ...extra },
  ]);
}

/** One short transaction per table under lock_timeout: the renames, the mirror trigger back to `<table>_legacy`. */
export async function cutover(run: Run, plan: Plan) {
  await enter(run, 'cutover');
  for (const tp of plan.tables) {
    const c = await acts.cutoverTable.executeWithOptions(
      opts(`cutover ${tp.table}: rename to ${tp.names.legacy}, ${tp.names.partitioned} → ${tp.table}, mirror on`, cutoverOpts),
      [run.input.database, tp, run.input.lockTimeoutMs],
    );
    run.state.cutover[tp.table] = c;
    run.table(tp.table).cutover = c;
  }
}
