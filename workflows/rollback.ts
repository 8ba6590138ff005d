// The rollback: puts every table of a switchover back to a plain table under its own name,
// from whatever state the database is in. Each step is idempotent, so running it twice, or
// again after a crash, ends in the same state.
import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEFAULT_LOCK_TIMEOUT_MS, rollbackInput } from '../src/input';
import { DESCRIPTIONS, statusQuery, SwitchoverPhase, SwitchoverTables } from '../src/shared';
import { initialStatus } from '../src/status';
import type { RollbackReport } from '../src/reports';
import type { TablePlan } from '../src/types';
import { ROLLBACK, opts } from './options';
import { errorMessage, parseInput } from './util';

const acts = proxyActivities<Activities>(ROLLBACK);

export type { RollbackReport };

export async function rollback(raw: unknown): Promise<RollbackReport> {
  const input = parseInput(rollbackInput, raw, 'rollback');
  const names = input.tables?.map((t) => t.table) ?? [];
  const state = initialStatus('rolling_back', names);
  setHandler(statusQuery, () => state, { description: DESCRIPTIONS.status });
  const what = input.switchoverWorkflowId ?? names.join(', ');
  const searchAttributes = (await acts.capabilities.executeWithOptions(opts(`rollback ${what}: worker capabilities`, ROLLBACK), [])).searchAttributes;
  const phase = (p: 'rolling_back' | 'rolled_back' | 'failed', note: string) => {
    state.phase = p;
    if (searchAttributes)
      upsertSearchAttributes([
        { key: SwitchoverPhase, value: p },
        { key: SwitchoverTables, value: state.tables },
      ]);
    setCurrentDetails(`## Rollback: ${p}\n\nTables: ${state.tables.join(', ') || '(none recorded)'}\n\n${note}`);
  };

  const plans = await acts.loadPlans.executeWithOptions(opts(`rollback ${what}: load recorded plans`, ROLLBACK), [
    input.database,
    input.schema,
    { workflowId: input.switchoverWorkflowId, tables: input.tables ? names : undefined },
  ]);
  state.tables = plans.map((p) => p.table);
  phase('rolling_back', input.switchoverWorkflowId ? `Compensating switchover ${input.switchoverWorkflowId}.` : 'Compensating by table.');
  const { report, failed } = await rollbackPlans(input.database, input.schema, plans, {
    restoreBackup: input.restoreBackup,
    lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS,
  });
  report.nothingToDo = names.filter((n) => !plans.some((p) => p.table === n));
  const done = report.tables.map((t) => `- ${t.table}: plain again (was ${t.from})`).join('\n');
  if (failed.length) {
    phase('failed', `${done}\n${failed.map((f) => `- ${f}`).join('\n')}`);
    throw ApplicationFailure.create({
      type: 'RollbackIncomplete',
      message:
        `rollback incomplete: ${failed.join('; ')}` +
        `${report.tables.length ? `; back to plain: ${report.tables.map((t) => t.table).join(', ')}` : ''}. ` +
        `Fix the cause, then run the rollback again: every step is idempotent`,
      nonRetryable: true,
      details: [report],
    });
  }
  phase('rolled_back', done);
  return report;
}

/**
 * Rolls each table back, the last touched first, then releases the claims of those plain again.
 * A table that cannot be rolled back does not stop the others: `failed` names why, and the
 * caller says both what is plain again and what is not.
 */
export async function rollbackPlans(
  database: string,
  schema: string,
  plans: TablePlan[],
  o: { restoreBackup: boolean; lockTimeoutMs: number },
): Promise<{ report: RollbackReport; failed: string[] }> {
  const report: RollbackReport = { tables: [], nothingToDo: [] };
  const failed: string[] = [];
  for (const tp of [...plans].reverse()) {
    const r = await acts.rollbackTable
      .executeWithOptions(opts(`rollback ${tp.table}: back to a plain table${o.restoreBackup ? ', restore from backup' : ''}`, ROLLBACK), [database, tp, o])
      .catch((err) => {
        if (!(err instanceof ActivityFailure)) throw err;
        failed.push(errorMessage(err).replace(/\.+$/, ''));
        return undefined;
      });
    if (r) report.tables.push(r);
  }
  if (report.tables.length) {
    const tables = report.tables.map((t) => t.table);
    await acts.releaseClaims.executeWithOptions(opts(`rollback ${tables.join(', ')}: release claims`, ROLLBACK), [database, schema, tables]);
  }
  return { report, failed };
}
