// Phase 6: the application's statements after cutover give the same answers as before it, and
// its writes succeed.
import { bad, ok, warn, type Check, type PhaseOutcome, type SmokeAnswer, type SmokeItem } from '../../src/rehearsal-report';
import { opts } from '../options';
import { acts, quiet, type Ctx } from './staging';

export async function applicationTesting(ctx: Ctx): Promise<PhaseOutcome> {
  const db = ctx.input.database;
  // With the load writing through the cutover, the answers before it are of other rows: compare
  // with the plain table the mirror keeps equal (`<table>_legacy` under the table's name, in a
  // rolled-back transaction), read in the same quiet moment. A strategy that keeps no legacy copy
  // (attach) can only show the statements succeed while the load writes.
  const legacy = ctx.strategy.rehearse.legacyCopy;
  const { after, before } = await quiet(ctx, async () => ({
    after: await acts.smokeAnswers.executeWithOptions(opts(`application testing: ${ctx.smoke.length} statements after cutover`), [db, ctx.smoke]),
    before:
      ctx.writer && legacy
        ? await acts.smokeAnswers.executeWithOptions(opts(`application testing: ${ctx.smoke.length} statements on the legacy tables`), [
            db,
            ctx.smoke,
            ctx.plans,
          ])
        : ctx.before!.answers,
  }));
  const checks: Check[] = ctx.smokeNotes.map((n) => warn('built-in set', n));
  ctx.smoke.forEach((item, i) => checks.push(compare(item, before[i], after[i], !!ctx.writer && !legacy)));
  const failed = checks.filter((c) => c.status === 'fail').length;
  return {
    summary: failed
      ? `${failed} of ${ctx.smoke.length} statements differ or fail after cutover`
      : `${ctx.smoke.length} statements: same answers, writes succeed`,
    checks,
  };
}

function compare(item: SmokeItem, b: SmokeAnswer, a: SmokeAnswer, successOnly: boolean): Check {
  const show = (x: SmokeAnswer) => `${x.command} ${x.rowCount} row(s)${x.preview ? ` ${x.preview}` : ''}`;
  if (!b.ok) return bad(item.name, `failed before cutover: ${b.error}`);
  if (!a.ok) return bad(item.name, `failed after cutover: ${a.error}`);
  if (successOnly) {
    // No legacy copy to read the same rows from while the load writes: success only.
    return ok(
      item.name,
      `${a.command} succeeded after cutover (${a.rowCount} row(s); the attach strategy keeps no copy to compare with while the load writes)`,
    );
  }
  if (a.command !== b.command || a.rowCount !== b.rowCount || a.answer !== b.answer)
    return bad(item.name, `answer changed after cutover: before ${show(b)}; after ${show(a)}`);
  if (item.builtin && !a.answer && a.rowCount !== 1) return bad(item.name, `${a.command} touched ${a.rowCount} rows, expected 1`);
  return ok(item.name, a.answer ? `same answer (${a.rowCount} rows)` : `${a.command} succeeded (${a.rowCount} row(s), rolled back)`);
}
