// Phase 3: the strategy's dual-write triggers, each tested on marked rows in rolled-back
// transactions; then everything phase 2 made is removed as a rollback before cutover would.
import { bad, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import { rollbackPlans } from '../rollback';
import { acts, type Ctx } from './staging';

export async function triggerBehaviour(ctx: Ctx): Promise<PhaseOutcome> {
  const { run, strategy, plans } = ctx;
  const plan = run.state.plan!;
  const checks: Check[] = [];
  const triggers = strategy.rehearse.triggers;
  if (triggers) {
    for (const tp of plans) {
      await triggers.stage.forward(run, tp, plan);
      checks.push(...(await triggers.test(run, tp)));
    }
  }
  // Then removed, as a rollback before cutover would: triggers and partitioned copies dropped.
  await removePrepared(ctx, checks);
  if (!triggers) return { summary: 'attach strategy: no dual-write triggers to test; the parents of phase 2 removed', checks };
  const tested = checks.filter((c) => c.status === 'ok' && / (insert|update|key-moving update|upsert|delete)/.test(c.name)).length;
  return { summary: `${tested} trigger checks passed; triggers and partitioned copies removed`, checks };
}

/** Rolls back what phases 2 and 3 made, then checks nothing of ours is left. */
async function removePrepared(ctx: Ctx, checks: Check[]): Promise<void> {
  const { database: db, schema, lockTimeoutMs } = ctx.input;
  const { failed } = await rollbackPlans(db, schema, ctx.plans, { restoreBackup: false, lockTimeoutMs });
  checks.push(...failed.map((f) => bad('rollback', f)));
  checks.push(...(await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id])).checks);
}
