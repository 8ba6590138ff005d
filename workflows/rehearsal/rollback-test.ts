// Phase 9: the rollback workflow after the cutover, with the writer stopped: the tables must hold
// exactly what the application saw before it, and nothing of ours may be left.
import { ParentClosePolicy, executeChild } from '@temporalio/workflow';
import { bad, ok, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import type { RollbackReport } from '../../src/reports';
import { LONG, opts } from '../options';
import { acts, type Ctx } from './staging';

export async function rollbackTest(ctx: Ctx): Promise<PhaseOutcome> {
  const { database: db, schema } = ctx.input;
  // The application's truth: the tables as it sees them by name, with the writer stopped.
  const truth = await acts.tableTruth.executeWithOptions(opts(`rollback test: rows, sums and row hash the application sees, before the rollback`, LONG), [
    db,
    ctx.plans,
  ]);
  const rollbackId = `${ctx.id}-rollback`;
  ctx.state.rehearsal.rollbackWorkflowId = rollbackId;
  const rb: RollbackReport = await executeChild('rollback', {
    args: [{ switchoverWorkflowId: ctx.state.rehearsal.switchoverWorkflowId, database: db, schema }],
    workflowId: rollbackId,
    parentClosePolicy: ParentClosePolicy.ABANDON,
  });
  const after = await acts.tableTruth.executeWithOptions(opts(`rollback test: rows, sums and row hash after the rollback`, LONG), [db, ctx.plans]);
  const checks: Check[] = ctx.plans.map((tp) => {
    const t = truth[tp.table];
    const a = after[tp.table];
    const same = t.rows === a.rows && t.rowHash === a.rowHash && JSON.stringify(t.sums) === JSON.stringify(a.sums);
    return same
      ? ok(`${tp.table} data`, `${a.rows} rows, sums and row hash equal to what the application saw before the rollback`)
      : bad(`${tp.table} data`, `after rollback ${a.rows} rows (hash ${a.rowHash}), the application saw ${t.rows} rows (hash ${t.rowHash})`);
  });
  const left = await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id, `${ctx.id}-switchover`, `${ctx.id}-dry-run`]);
  checks.push(...left.checks);
  return {
    summary: `rolled back ${rb.tables.map((t) => `${t.table} (was ${t.from})`).join(', ')}; tables compared with the application's truth`,
    checks,
    details: { rollbackWorkflowId: rollbackId, truth, droppedMarkedRows: left.droppedMarked },
  };
}
