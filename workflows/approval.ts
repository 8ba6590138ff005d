// The human approval before the point of no return: waits for approve or reject (signals or
// Updates, workflows/control.ts) as the strategy waits, records the decision as an audit row, and
// says what a timeout leaves. Deterministic workflow code: no I/O.
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { Plan } from '../src/types';
import type { Run } from './control';
import { opts } from './options';
import { acts } from './stages';
import type { Strategy } from './strategies';
import { durationMs } from './util';
import { settleBehind } from './behind';

/**
 * Waits for approve or reject (when required) and records the decision. Returns what stops the
 * switchover here (`rejected`, or `timed_out` with onTimeout "rollback"), or null to go on.
 */
export async function approval(run: Run, plan: Plan, strategy: Strategy): Promise<'rejected' | 'timed_out' | null> {
  const { input, state } = run;
  if (!input.approval.required) {
    await settleBehind(run, run.decision !== 'rejected');
    return run.decision === 'rejected' ? 'rejected' : null;
  }
  if (!run.decision) state.approval = { state: 'waiting', since: new Date().toISOString(), approvers: input.approval.approvers };
  run.setPhase('awaiting_approval');
  const decided = await strategy.awaitDecision(run, plan, durationMs(input.approval.timeout));
  // What ran on while approval waited, finished before cutover or rollback; its failure (it ended
  // the wait) fails the switchover, which rolls back. An approve before it finished waits here.
  await settleBehind(run, decided && run.decision !== 'rejected');
  if (!decided) {
    state.approval = { state: 'timed_out', at: new Date().toISOString() };
    if (input.approval.onTimeout === 'rollback') return 'timed_out';
    run.undo = 'leave';
    throw ApplicationFailure.create({
      type: 'ApprovalTimedOut',
      message:
        `nobody approved within ${input.approval.timeout}; the switchover stopped before cutover. ${strategy.leftInPlace(plan)}: run the rollback workflow ` +
        `(--type rollback --input '{"switchoverWorkflowId":"${workflowInfo().workflowId}"}') to remove them.`,
      nonRetryable: true,
    });
  }
  await auditDecision(run);
  return run.decision === 'rejected' ? 'rejected' : null;
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
