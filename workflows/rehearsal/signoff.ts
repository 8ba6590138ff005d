// Phase 10's forecast: the staging measurements scaled to production's row counts (given, read
// from a target, or staging's own). The workflow then waits for the sign-off signal.
import { forecastFrom, type PhaseOutcome } from '../../src/rehearsal-report';
import { acts, type Ctx } from './staging';

export async function signoff(ctx: Ctx): Promise<PhaseOutcome> {
  const { input } = ctx;
  let rows: Record<string, number> = {};
  let source = `staging's own row counts (${input.database})`;
  if (input.forecast && 'rows' in input.forecast && input.forecast.rows) {
    rows = input.forecast.rows;
    source = 'row counts given in the input';
  } else if (input.forecast && 'database' in input.forecast) {
    rows = await acts.productionRows(
      input.forecast.database,
      input.schema,
      input.tables.map((t) => t.table),
    );
    source = `row counts of target "${input.forecast.database}" (read only)`;
  }
  const measured = ctx.sizes.map((s) => {
    const t = ctx.switchover!.tables.find((x) => x.table === s.table)!;
    return { ...s, rows: t.copy.rows || s.rows, copyMs: t.copy.ms, verifyMs: t.verification?.ms ?? 0, lockMs: t.cutover?.lockMs ?? 0 };
  });
  const r = ctx.writer?.report;
  const load = r && { writesPerSec: r.opsPerSec, p99Ms: r.latencyMs.p99, cutoverStallMs: r.bySegment.cutover?.latencyMs.max ?? null };
  ctx.forecast = forecastFrom(measured, rows, source, input.backup === 'table', load);
  return { summary: `forecast from ${source}`, checks: [], details: { forecast: ctx.forecast } };
}
