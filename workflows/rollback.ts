// The rollback: puts every table of a switchover back to a plain table under its own name,
// from whatever state the database is in. Each step is idempotent, so running it twice, or
// again after a crash, ends in the same state.
import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DEFAULT_LOCK_TIMEOUT_MS, rollbackInput } from '../src/input';
import { DESCRIPTIONS, statusQuery, SwitchoverPhase, SwitchoverTables } from '../src/shared';
import { initialStatus } from '../src/status';
import type { RollbackReport } from '../src/reports';
import { errorMessage, parseInput } from './util';

// Every activity heartbeats every 2 s (activities/index.ts): a lost worker is noticed within 10 s.
const actOpts = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
} as const;
const acts = proxyActivities<Activities>(actOpts);

export type { RollbackReport };

export async function rollback(raw: unknown): Promise<RollbackReport> {
  const input = parseInput(rollbackInput, raw, 'rollback');
  const names = input.tables?.map((t) => t.table) ?? [];
  const state = initialStatus('rolling_back', names);
  setHandler(statusQuery, () => state, { description: DESCRIPTIONS.status });
  const what = input.switchoverWorkflowId ?? names.join(', ');
  const searchAttributes = (await acts.capabilities.executeWithOptions({ ...actOpts, summary: `rollback ${what}: worker capabilities` }, [])).searchAttributes;
  const phase = (p: 'rolling_back' | 'rolled_back' | 'failed', note: string) => {
    state.phase = p;
    if (searchAttributes) upsertSearchAttributes([{ key: SwitchoverPhase, value: p }, { key: SwitchoverTables, value: state.tables }]);
    setCurrentDetails(`## Rollback: ${p}\n\nTables: ${state.tables.join(', ') || '(none recorded)'}\n\n${note}`);
  };

  const plans = await acts.loadPlans.executeWithOptions({ ...actOpts, summary: `rollback ${what}: load recorded plans` }, [
    input.database,
    input.schema,
    { workflowId: input.switchoverWorkflowId, tables: input.tables ? names : undefined },
  ]);
  state.tables = plans.map((p) => p.table);
  phase('rolling_back', input.switchoverWorkflowId ? `Compensating switchover ${input.switchoverWorkflowId}.` : 'Compensating by table.');
  const report: RollbackReport = { tables: [], nothingToDo: names.filter((n) => !plans.some((p) => p.table === n)) };
  // Reverse order: undo the last table touched first. A table that cannot be rolled back does not
  // stop the others: the failure then names both what is plain again and what is not.
  const failed: string[] = [];
  for (const tp of [...plans].reverse()) {
    const r = await acts.rollbackTable.executeWithOptions(
      {
        startToCloseTimeout: '10 minutes',
        heartbeatTimeout: '10s',
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 },
        summary: `rollback ${tp.table}: back to a plain table${input.restoreBackup ? ', restore from backup' : ''}`,
      },
      [input.database, tp, { restoreBackup: input.restoreBackup, lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS }],
    ).catch((err) => {
      if (!(err instanceof ActivityFailure)) throw err;
      failed.push(errorMessage(err).replace(/\.+$/, ''));
      return undefined;
    });
    if (r) report.tables.push(r);
  }
  if (report.tables.length) {
    const tables = report.tables.map((t) => t.table);
    await acts.releaseClaims.executeWithOptions({ ...actOpts, summary: `rollback ${tables.join(', ')}: release claims` }, [input.database, input.schema, tables]);
  }
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
