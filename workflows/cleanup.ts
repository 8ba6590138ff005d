// Cleanup of finished switchovers: drops the mirror trigger, `<table>_legacy` and the backup,
// then releases the claims. Reached through the switchover's input (`"mode": "cleanup"`).
import { ApplicationFailure } from '@temporalio/workflow';
import type { TablePlan } from '../src/types';
import { emptyTableReport, type SwitchoverReport } from '../src/reports';
import type { Run } from './control';
import { acts, opts } from './stages';

export async function cleanupTables(run: Run): Promise<SwitchoverReport> {
  const { input, names } = run;
  run.setPhase('cleanup');
  const plans: TablePlan[] = await acts.loadPlans.executeWithOptions(opts(`cleanup ${names.join(', ')}: load recorded plans`), [input.database, input.schema, { tables: names }]);
  const missing = names.filter((n) => !plans.some((p) => p.table === n));
  if (missing.length) {
    run.setPhase('failed');
    throw ApplicationFailure.create({
      type: 'StateConflict',
      message: `cleanup: no switchover is recorded for ${missing.join(', ')} in database "${input.database}"; nothing was changed.`,
      nonRetryable: true,
    });
  }
  for (const tp of plans) {
    await acts.cleanupTable.executeWithOptions(opts(`cleanup ${tp.table}: drop mirror, ${tp.names.legacy}, ${tp.names.backup}`), [input.database, tp]);
  }
  await acts.releaseClaims.executeWithOptions(opts(`cleanup ${names.join(', ')}: release claims`), [input.database, input.schema, names]);
  run.setPhase('done');
  return run.finish('cleaned', { tables: plans.map((tp) => emptyTableReport(tp.table)) });
}
