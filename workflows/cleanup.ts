// Cleanup of finished switchovers: drops the mirror trigger, `<table>_legacy` and the backup,
// then releases the claims. Its own workflow type `cleanup` (only the tables' names), or the
// switchover's input with `"mode": "cleanup"`.
import { ApplicationFailure } from '@temporalio/workflow';
import type { TablePlan } from '../src/types';
import { emptyTableReport, type SwitchoverReport } from '../src/reports';
import { cleanupInput } from '../src/input';
import { initialStatus } from '../src/status';
import { track, type Tracked } from './control';
import { acts, announce } from './stages';
import { opts } from './options';
import { strategyOf } from './strategies';
import { parseInput } from './util';

/** Workflow type `cleanup`: `{"tables": ["revenues"], "database"?, "schema"?}`. */
export async function cleanup(raw: unknown): Promise<SwitchoverReport> {
  const input = parseInput(cleanupInput, raw, 'cleanup');
  const run = track(
    input,
    initialStatus(
      'cleanup',
      input.tables.map((t) => (typeof t === 'string' ? t : t.table)),
    ),
  );
  await announce(run);
  return cleanupTables(run);
}

export async function cleanupTables(run: Tracked): Promise<SwitchoverReport> {
  const { names } = run;
  const input = { database: run.database, schema: run.schema };
  run.setPhase('cleanup');
  const plans: TablePlan[] = await acts.loadPlans.executeWithOptions(opts(`cleanup ${names.join(', ')}: load recorded plans`), [
    input.database,
    input.schema,
    { tables: names },
  ]);
  const missing = names.filter((n) => !plans.some((p) => p.table === n));
  if (missing.length) {
    run.setPhase('failed');
    throw ApplicationFailure.create({
      type: 'StateConflict',
      message: `cleanup: no switchover is recorded for ${missing.join(', ')} in database "${input.database}"; nothing was changed.`,
      nonRetryable: true,
    });
  }
  for (const tp of plans) await strategyOf(tp).cleanup(run, tp);
  await acts.releaseClaims.executeWithOptions(opts(`cleanup ${names.join(', ')}: release claims`), [input.database, input.schema, names]);
  run.setPhase('done');
  return run.finish('cleaned', { tables: plans.map((tp) => emptyTableReport(tp.table)) });
}
