// Phase 2: the switchover's own preflight, claim and the strategy's prepare stage, table by
// table, each checked (copy: `<table>_partitioned` and its partitions; attach: the parent).
import { warn, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import { claim, preflight } from '../stages';
import type { Ctx } from './staging';

export async function prepare(ctx: Ctx): Promise<PhaseOutcome> {
  const { run, strategy } = ctx;
  const plan = await preflight(run);
  ctx.plans = plan.tables;
  ctx.touched = true;
  const checks: Check[] = plan.tables.flatMap((tp) => tp.warnings.map((w) => warn(`${tp.table} plan`, w)));
  await claim(run, plan);
  for (const tp of plan.tables) {
    await strategy.rehearse.prepare.forward(run, tp, plan);
    checks.push(...(await strategy.rehearse.prepareChecks(run, tp)));
  }
  return { summary: plan.tables.map((tp) => strategy.rehearse.prepared(tp)).join(', '), checks };
}
