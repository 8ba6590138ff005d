// The switchover, as its runbook: preflight → claim → checksums → backup → the strategy's stages
// (copy: prepare → triggers → copy → verify; workflows/strategies.ts) → approval → cutover. Each
// stage runs its activities (activities/<stage>.ts) table by table; the operator's handlers are in
// workflows/control.ts. A failure after changes began runs the rollback workflow as compensation
// (a child that outlives this one).
import { ApplicationFailure, CancellationScope, ParentClosePolicy, executeChild, isCancellation, patched, workflowInfo } from '@temporalio/workflow';
import { switchoverInput } from '../src/input';
import type { RollbackOutcome, RollbackReport, SwitchoverReport } from '../src/reports';
import { startRun, type Run } from './control';
import { announce, backup, checksums, claim, preflight, runStage } from './stages';
import { approval, auditDecision } from './approval';
import { settleBehind } from './behind';
import { STRATEGIES } from './strategies';
import { cleanupTables } from './cleanup';
import { cutoverInWindow, windowHandlers } from './window';
import { errorMessage, errorType, ownFailure, parseInput } from './util';

export type { RollbackOutcome, SwitchoverReport, TableReport } from '../src/reports';

export async function switchover(raw: unknown): Promise<SwitchoverReport> {
  const run = startRun(parseInput(switchoverInput, raw, 'switchover', 'Nothing was changed; fix the input and start again.'));
  windowHandlers(run);
  await announce(run);
  if (run.input.mode === 'cleanup') return cleanupTables(run);
  const plan = await preflight(run);
  if (run.input.dryRun) return done(run, 'dry_run', { plan });
  const strategy = STRATEGIES[run.input.strategy];
  try {
    await run.stages.run(async () => {
      await claim(run, plan);
      await checksums(run, plan);
      if (run.input.backup === 'table') await runStage(run, plan, backup);
      for (const stage of strategy.stages) await runStage(run, plan, stage);
    });
    const stop = await approval(run, plan, strategy);
    if (stop) return done(run, stop, { rollback: await compensate(run, stop === 'rejected' ? 'rejected' : 'approval timed out') });
    // Runs recorded before cutover windows existed cut over at once.
    if (!patched('cutover-window')) await runStage(run, plan, strategy.cutover);
    else if ((await cutoverInWindow(run, plan, strategy)) === 'rejected') {
      await auditDecision(run, { phase: 'awaiting_window' });
      return done(run, 'rejected', { rollback: await compensate(run, 'rejected while the cutover waited for its window') });
    }
    return done(run, 'done');
  } catch (err) {
    return failed(run, err);
  }
}

function done(run: Run, outcome: SwitchoverReport['outcome'], extra: Partial<SwitchoverReport> = {}): SwitchoverReport {
  if (outcome === 'done' || outcome === 'dry_run') run.setPhase('done');
  return run.finish(outcome, extra);
}

/** The failure exits: a reject while a stage ran, a workflow cancel, a failure; each undoes what run.undo says. */
async function failed(run: Run, err: unknown): Promise<SwitchoverReport> {
  const { state } = run;
  if (run.decision === 'rejected' && run.stages.consideredCancelled && !CancellationScope.current().consideredCancelled) {
    // A reject while a stage ran: that stage stopped (or failed on its way out); roll back as a
    // reject at the approval point does.
    if (run.input.approval.required) await auditDecision(run, { phase: state.phase });
    return done(run, 'rejected', { rollback: await compensate(run, `rejected in ${state.phase}`) });
  }
  state.error = errorMessage(err);
  if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
    // The workflow was cancelled (UI, `temporal workflow cancel`): the running stage stopped;
    // roll back what was done, then end Canceled.
    state.error = 'workflow cancelled';
    if (run.undo === 'claim' || run.undo === 'rollback') await compensate(run, `workflow cancelled in ${state.phase}`);
    else run.setPhase('failed');
    throw err;
  }
  if (run.undo !== 'rollback') {
    run.setPhase('failed');
    throw ownFailure(err);
  }
  const rb = await compensate(run, `failed in ${state.phase}`);
  const outcome = rb.ok
    ? `rollback ${rb.workflowId} completed: ${rb.tables.map((t) => `${t.table} back to plain (was ${t.from})`).join(', ')}`
    : `rollback ${rb.workflowId} FAILED: ${rb.error}`;
  run.setPhase('failed');
  throw ApplicationFailure.create({
    type: errorType(err) ?? 'SwitchoverFailed',
    message: `${state.error.replace(/\.+$/, '')}. ${outcome}.`,
    nonRetryable: true,
    cause: err as Error,
    details: [{ rollback: rb }],
  });
}

/** Runs the rollback workflow as a child that outlives this one, even if this one is cancelled. */
async function compensate(run: Run, why: string): Promise<RollbackOutcome> {
  const { input, state } = run;
  const info = workflowInfo();
  const workflowId = `${info.workflowId}-rollback`;
  state.rollback = { workflowId, state: 'running', message: why };
  run.setPhase('rolling_back');
  return CancellationScope.nonCancellable(async () => {
    // Nothing of ours still at work on the tables (the statistics run on while approval waits).
    await settleBehind(run, false);
    try {
      const r: RollbackReport = await executeChild('rollback', {
        args: [{ switchoverWorkflowId: info.workflowId, database: input.database, schema: input.schema }],
        workflowId,
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      state.rollback = { workflowId, state: 'completed', message: why };
      run.setPhase('rolled_back');
      return { ...r, workflowId, ok: true };
    } catch (err) {
      state.rollback = { workflowId, state: 'failed', message: errorMessage(err) };
      return { tables: [], nothingToDo: [], workflowId, ok: false, error: errorMessage(err) };
    }
  });
}
