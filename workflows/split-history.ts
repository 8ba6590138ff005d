// splitHistory (README "Splitting the history partition"): after an attach switchover, the history
// partition's rows moved into period partitions online, oldest first: preflight → prepare → per
// period copy and verify → indexes → cutover → retention. A failure before cutover rolls the split
// back; "mode": "rollback" / "cleanup" undo or finish one from wherever it stands.
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RetentionResult } from '../activities/retention';
import type { SplitCutoverResult, SplitUndoResult } from '../activities/split-cutover';
import type { PeriodCopy } from '../activities/split';
import { splitHistoryInput, type SplitHistoryInput } from '../src/input';
import { DESCRIPTIONS, splitStatusQuery } from '../src/shared';
import type { PeriodStatus, SplitPlan, SplitStatus } from '../src/splitplan';
import { MAINTENANCE } from './options';
import { errorMessage, ownFailure, parseInput } from './util';

// Maintenance's retries (a lock timeout behind a long transaction, a lost connection: backoff up to a
// minute); a period's copy may take longer than a maintenance step.
const actOpts: ActivityOptions = { ...MAINTENANCE, startToCloseTimeout: '2 hours' };
const acts = proxyActivities<Activities>(actOpts);

export interface SplitReport {
  table: string;
  mode: SplitHistoryInput['mode'];
  dryRun: boolean;
  plan?: SplitPlan;
  periods: PeriodStatus[];
  cutover?: SplitCutoverResult;
  retention?: RetentionResult;
  undo?: SplitUndoResult;
}

function details(st: SplitStatus): string {
  const lines = st.periods.map(
    (p) =>
      `- ${p.name} (${p.from}..${p.to}): ${p.state}, ${p.rowsCopied} rows${p.verification ? `, verified ${p.verification.ok ? 'equal' : 'DIFFERENT'}` : ''}`,
  );
  return `## splitHistory ${st.table}: ${st.phase}\n\n${lines.join('\n')}${st.cutoverLockMs !== undefined ? `\n\ncutover lock ${st.cutoverLockMs.toFixed(1)} ms` : ''}`;
}

/** The copy and verification of every period, oldest first, reported in the status as each completes. */
async function copyPeriods(input: SplitHistoryInput, plan: SplitPlan, st: SplitStatus): Promise<void> {
  for (const [i, period] of st.periods.entries()) {
    const copied: PeriodCopy = await acts.splitCopyPeriod.executeWithOptions(
      { ...actOpts, summary: `split copy ${plan.table}: ${period.name} (${period.from}..${period.to})` },
      [input.database, plan, i, { batchSize: input.batchSize, pauseMs: input.pauseMs, adaptive: input.adaptive, lockTimeoutMs: input.lockTimeoutMs }],
    );
    Object.assign(period, { state: 'copied', rowsCopied: copied.rowsCopied, batches: copied.batches, ms: copied.ms });
    const v = await acts.splitVerifyPeriod.executeWithOptions({ ...actOpts, summary: `split verify ${plan.table}: ${period.name}` }, [input.database, plan, i]);
    period.verification = v;
    if (!v.ok) {
      throw ApplicationFailure.create({
        type: 'ParityMismatch',
        nonRetryable: true,
        message:
          `split of ${plan.schema}.${plan.table}: ${period.name} differs from the history's rows of ${period.from}..${period.to} ` +
          `(${v.periodRows} rows, hash ${v.periodHash}; history ${v.historyRows} rows, hash ${v.historyHash}); the split is rolled back`,
      });
    }
    period.state = 'verified';
    setCurrentDetails(details(st));
  }
}

/** Rollback or cleanup of a split from the plan it recorded. */
async function undo(input: SplitHistoryInput, st: SplitStatus): Promise<SplitReport> {
  const plan = await acts.splitRecordedPlan(input.database, input.schema, input.table);
  if (!plan) {
    throw ApplicationFailure.create({
      type: 'StateConflict',
      nonRetryable: true,
      message: `no split of ${input.schema}.${input.table} was ever prepared (no SPLIT-PLAN recorded); nothing to ${input.mode}. Nothing was changed.`,
    });
  }
  st.periods = plan.periods.map((p) => ({ ...p, state: 'pending', rowsCopied: 0, batches: 0 }));
  const summary = `split ${input.mode} ${plan.table}`;
  if (input.mode === 'rollback') st.phase = 'rolling_back';
  const r =
    input.mode === 'rollback'
      ? await acts.splitRollback.executeWithOptions({ ...actOpts, summary }, [input.database, plan, input.lockTimeoutMs])
      : await acts.splitCleanup.executeWithOptions({ ...actOpts, summary }, [input.database, plan, input.lockTimeoutMs]);
  st.phase = input.mode === 'rollback' ? 'rolled_back' : 'cleaned';
  return { table: input.table, mode: input.mode, dryRun: false, periods: st.periods, undo: r };
}

export async function splitHistory(raw: unknown): Promise<SplitReport> {
  const input = parseInput(splitHistoryInput, raw, 'splitHistory');
  const st: SplitStatus = { phase: 'preflight', table: input.table, mode: input.mode, dryRun: input.dryRun, periods: [] };
  setHandler(splitStatusQuery, () => st, { description: DESCRIPTIONS.status });
  if (input.mode !== 'split') return undo(input, st);
  const plan = await acts.splitPreflight.executeWithOptions({ ...actOpts, summary: `split preflight ${input.schema}.${input.table}` }, [
    input.database,
    input.schema,
    input.table,
  ]);
  st.periods = plan.periods.map((p) => ({ ...p, state: 'pending', rowsCopied: 0, batches: 0 }));
  setCurrentDetails(details(st));
  if (input.dryRun) return { table: input.table, mode: input.mode, dryRun: true, plan, periods: st.periods };
  let cutover: SplitCutoverResult;
  try {
    st.phase = 'prepare';
    await acts.splitPrepare.executeWithOptions({ ...actOpts, summary: `split prepare ${plan.table}: ${plan.periods.length} period tables` }, [
      input.database,
      plan,
      input.lockTimeoutMs,
    ]);
    st.phase = 'copy';
    await copyPeriods(input, plan, st);
    st.phase = 'indexes';
    await acts.splitIndexes.executeWithOptions({ ...actOpts, summary: `split index ${plan.table}: ${plan.indexes.length} per period` }, [
      input.database,
      plan,
      input.lockTimeoutMs,
    ]);
    st.phase = 'cutover';
    cutover = await acts.splitCutover.executeWithOptions({ ...actOpts, summary: `split cutover ${plan.table}` }, [input.database, plan, input.lockTimeoutMs]);
  } catch (err) {
    // Before cutover (the cutover is one transaction: failed, it changed nothing): the split is undone.
    st.error = errorMessage(err);
    st.phase = 'rolling_back';
    // Not cancellable: a cancelled split (workflow cancel) still puts the history partition back.
    await CancellationScope.nonCancellable(() =>
      acts.splitRollback.executeWithOptions({ ...actOpts, summary: `split rollback ${plan.table}` }, [input.database, plan, input.lockTimeoutMs]),
    );
    st.phase = 'rolled_back';
    // A cancelled split ends Canceled (rolled back), as a cancelled switchover does.
    throw isCancellation(err) ? err : ownFailure(err);
  }
  st.cutoverLockMs = cutover.lockMs;
  let retention: RetentionResult | undefined;
  if (input.retention) {
    st.phase = 'retention';
    retention = await acts.applyRetention.executeWithOptions(
      { ...actOpts, summary: `retention ${plan.table}: keep ${input.retention.keep}, ${input.retention.action}` },
      [input.database, plan.tp, { retention: input.retention, dryRun: false, lockTimeoutMs: input.lockTimeoutMs }],
    );
  }
  st.phase = 'done';
  setCurrentDetails(details(st));
  return { table: input.table, mode: input.mode, dryRun: false, plan, periods: st.periods, cutover, ...(retention ? { retention } : {}) };
}
