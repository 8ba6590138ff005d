// Phase 4: the switchover's dry run as a child workflow: the plan and its statements, compared
// with what phase 2 made.
import { executeChild } from '@temporalio/workflow';
import { ok, warn, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import type { SwitchoverReport } from '../../src/reports';
import type { Ctx } from './staging';

export async function dryRun(ctx: Ctx): Promise<PhaseOutcome> {
  const r: SwitchoverReport = await executeChild('switchover', { args: [{ ...ctx.sw, dryRun: true }], workflowId: `${ctx.id}-dry-run` });
  const plan = r.plan!;
  const checks: Check[] = [];
  for (const tp of plan.tables) {
    const statements = Object.values(plan.sql[tp.table] ?? {}).reduce((a, s) => a + s.length, 0);
    const mine = ctx.plans.find((p) => p.table === tp.table);
    checks.push(
      mine && mine.partitions.length === tp.partitions.length
        ? ok(`${tp.table} plan`, `${tp.partitions.length} partitions, ${tp.indexes.length} indexes, ${statements} statements`)
        : warn(`${tp.table} plan`, `the dry run plans ${tp.partitions.length} partitions, phase 2 created ${mine?.partitions.length ?? 0}`),
    );
    checks.push(...tp.warnings.map((w) => warn(`${tp.table} plan`, w)));
  }
  const counts = (t: string) => Object.fromEntries(Object.entries(plan.sql[t] ?? {}).map(([k, v]) => [k, v.length]));
  return {
    summary: `plan for ${plan.tables.length} table(s) on ${plan.database}, as of ${plan.today}`,
    checks,
    details: { statements: Object.fromEntries(plan.tables.map((tp) => [tp.table, counts(tp.table)])) },
  };
}
