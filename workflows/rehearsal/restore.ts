// After a failed phase: staging put back as it was (writer stopped, switchover rejected, every
// table rolled back, leftovers swept), each step a check of the failure report.
import { ParentClosePolicy, executeChild } from '@temporalio/workflow';
import { bad, ok, type Check, type RehearsalReport } from '../../src/rehearsal-report';
import type { RollbackReport } from '../../src/reports';
import { rejectSignal } from '../../src/shared';
import { errorMessage } from '../util';
import { acts, stopWriter, type Ctx } from './staging';

/** After a failed phase: writer stopped, switchover rejected, every table rolled back, leftovers swept. */
export async function restoreStaging(ctx: Ctx): Promise<NonNullable<RehearsalReport['restore']>> {
  const { database: db, schema, tables } = ctx.input;
  const checks: Check[] = [];
  if (ctx.writer && !ctx.writer.settled) {
    await stopWriter(ctx).then(
      (r) => checks.push(ok('live writer', `stopped after ${r.writes} writes, ${r.failedWrites} failed`)),
      (err) => checks.push(bad('live writer', errorMessage(err))),
    );
  }
  if (ctx.child && !ctx.child.done) {
    await ctx.child.handle.signal(rejectSignal, { by: `rehearsal ${ctx.id}`, reason: 'a rehearsal phase failed' }).catch(() => undefined);
    await ctx.child.result.then(
      (r) => checks.push(ok('switchover', `ended ${r.outcome}`)),
      (err) => checks.push(ok('switchover', `ended: ${errorMessage(err)}`)),
    );
  }
  try {
    const rb: RollbackReport = await executeChild('rollback', {
      args: [{ tables, database: db, schema }],
      workflowId: `${ctx.id}-restore`,
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    checks.push(ok('rollback', rb.tables.map((t) => `${t.table} back to plain (was ${t.from})`).join(', ') || 'nothing to roll back'));
  } catch (err) {
    checks.push(bad('rollback', errorMessage(err)));
  }
  if (ctx.plans.length) {
    const left = await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id, `${ctx.id}-switchover`, `${ctx.id}-dry-run`]).catch((err) => ({
      checks: [bad('leftovers', errorMessage(err))],
    }));
    checks.push(...left.checks);
  }
  const failed = checks.filter((c) => c.status === 'fail');
  return {
    ok: !failed.length,
    summary: failed.length
      ? `staging NOT fully restored: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}`
      : 'staging tables are plain again; nothing of ours is left but audit rows',
    checks,
  };
}
