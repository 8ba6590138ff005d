// Phase 5: the real switchover as a child workflow, with the live writer (when configured)
// writing through it: the application's statements and their plans are read before cutover,
// then the rehearsal approves, and the cutover's outcome is checked per table.
import { ParentClosePolicy, patched, startChild, type ChildWorkflowHandle } from '@temporalio/workflow';
import { bad, ok, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import type { SwitchoverReport } from '../../src/reports';
import { approveSignal } from '../../src/shared';
import { LONG, opts } from '../options';
import { acts, startWriter, steer, type Ctx } from './staging';

export async function switchover(ctx: Ctx): Promise<PhaseOutcome> {
  if (ctx.input.load) await planLoad(ctx);
  const childId = `${ctx.id}-switchover`;
  const { result } = await startSwitchover(ctx, childId);
  await awaitingApproval(ctx, childId, result);
  // The baseline for phases 6 and 7, read with the writer paused so both sides see the same rows.
  let copied: { ops: number; failures: number; errors: string[] } | undefined;
  if (ctx.writer) {
    await steer(ctx, 'running', 'awaiting_approval');
    await steer(ctx, 'paused', 'awaiting_approval');
    copied = ctx.state.rehearsal.writer;
  }
  await beforeCutover(ctx);
  // The load writes on through the cutover: its `cutover` segment holds the stall writers see.
  if (ctx.writer) await steer(ctx, 'running', 'cutover');
  await ctx.child!.handle.signal(approveSignal, { by: `rehearsal ${ctx.id}`, comment: 'approved by the rehearsal after its before-cutover checks' });
  ctx.state.approval = { state: 'approved', by: `rehearsal ${ctx.id}`, at: new Date().toISOString() };
  const report = await result;
  ctx.child!.done = true;
  if (ctx.writer) await steer(ctx, 'running', 'after');
  ctx.switchover = report;
  if (report.outcome !== 'done') throw new Error(`the switchover ended "${report.outcome}" instead of cutting over`);
  for (const t of report.tables) if (t.cutover) ctx.state.cutover[t.table] = t.cutover;
  ctx.sizes = await acts.measureTables(ctx.input.database, ctx.plans);
  const checks: Check[] = report.tables.map((t) => ctx.strategy.rehearse.switched(t));
  if (copied) {
    checks.push(
      copied.failures
        ? bad('live writer', `${copied.failures} of ${copied.ops} ops failed during copy and verify; first: ${copied.errors.join('; ')}`)
        : ok('live writer', `${copied.ops} ops committed during copy and verify, none failed; writing on through the cutover`),
    );
  }
  return {
    summary: `cut over ${report.tables.map((t) => `${t.table} (lock ${t.cutover?.lockMs.toFixed(1)} ms)`).join(', ')}`,
    checks,
    details: { switchoverWorkflowId: childId },
  };
}

/** The load, planned on the plain tables before the switchover touches them, and started. */
async function planLoad(ctx: Ctx): Promise<void> {
  const load = ctx.input.load!;
  const cutoff = ctx.strategy.rehearse.loadCutoff;
  const p = await acts.planWriterLoad.executeWithOptions(opts(`plan the load on ${ctx.input.tables.length} table(s)`), [
    ctx.input.database,
    ctx.input.schema,
    ctx.input.tables,
    load.mix,
    cutoff ? Object.fromEntries(ctx.plans.map((tp) => [tp.table, cutoff(tp)])) : undefined,
  ]);
  ctx.loadUnplanned = p.unplanned;
  if (!p.runnable) {
    ctx.loadSkipped = p.skipped;
    return;
  }
  startWriter(ctx, p.plans);
  await steer(ctx, 'running', 'copy');
}

async function startSwitchover(ctx: Ctx, childId: string): Promise<NonNullable<Ctx['child']>> {
  ctx.state.rehearsal.switchoverWorkflowId = childId;
  // REQUEST_CANCEL: if the rehearsal is cancelled, the switchover compensates (rolls back) itself.
  const handle = await startChild('switchover', { args: [ctx.sw], workflowId: childId, parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL });
  const result = handle.result() as Promise<SwitchoverReport>;
  result.catch(() => undefined); // awaited later; this only marks a failure as handled meanwhile
  ctx.child = { handle: handle as ChildWorkflowHandle<never>, result, done: false };
  ctx.refresh();
  return ctx.child;
}

/** Until the switchover asks for approval; the load's writes count per phase of it: copy, verify, awaiting_approval. */
async function awaitingApproval(ctx: Ctx, childId: string, result: Promise<SwitchoverReport>): Promise<void> {
  const ends = ['awaiting_approval', 'failed', 'rolled_back', 'done'];
  if (ctx.writer) {
    const at = await acts.waitForWorkflowPhase.executeWithOptions(opts(`wait for switchover ${childId} to verify`, LONG), [childId, ['verify', ...ends]]);
    if (at === 'verify') await steer(ctx, 'running', 'verify');
  }
  const reached = await acts.waitForWorkflowPhase.executeWithOptions(opts(`wait for switchover ${childId} to ask for approval`, LONG), [childId, ends]);
  if (reached !== 'awaiting_approval') {
    await result;
    throw new Error(`the switchover ended in phase ${reached} without asking for approval`);
  }
}

/** The application's statements (smokeSql, or the built-in set) with their answers and plans before cutover. */
async function beforeCutover(ctx: Ctx): Promise<void> {
  const db = ctx.input.database;
  if (ctx.input.smokeSql) ctx.smoke = ctx.input.smokeSql.map((s, i) => ({ name: `smokeSql[${i}]`, sql: s, builtin: false }));
  else ({ items: ctx.smoke, notes: ctx.smokeNotes } = await acts.builtinSmoke(db, ctx.plans));
  ctx.before = {
    answers: await acts.smokeAnswers.executeWithOptions(opts(`application testing: ${ctx.smoke.length} statements before cutover`), [db, ctx.smoke]),
    plans: await acts.smokePlans.executeWithOptions(opts(`performance: EXPLAIN and timings before cutover`), [db, ctx.smoke, ctx.plans]),
  };
  // The application's frequent statements that will not prune, with their generic plans (rehearsals recorded before: none).
  if (patched('rehearsal-unpruned-statements')) {
    const summary = `performance: the application's frequent statements without the partition key (pg_stat_statements)`;
    ({ items: ctx.unpruned, notes: ctx.unprunedNotes } = await acts.unprunedSmoke.executeWithOptions(opts(summary), [db, ctx.plans]));
    if (ctx.unpruned.length) {
      const plansSummary = `performance: generic plans of ${ctx.unpruned.length} application statements before cutover`;
      ctx.before.unpruned = await acts.smokePlans.executeWithOptions(opts(plansSummary), [db, ctx.unpruned, ctx.plans]);
    }
  }
}
