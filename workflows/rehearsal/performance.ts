// Phase 7: every statement's plan and timing after cutover against before it: pruning where a
// range of one partition was expected, and, per table, the statements that probe every partition.
import { bad, ok, warn, type Check, type PhaseOutcome } from '../../src/rehearsal-report';
import { opts } from '../options';
import { acts, quiet, type Ctx } from './staging';

export async function performance(ctx: Ctx): Promise<PhaseOutcome> {
  const after = await quiet(ctx, () =>
    acts.smokePlans.executeWithOptions(opts('performance: EXPLAIN and timings after cutover'), [ctx.input.database, ctx.smoke, ctx.plans]),
  );
  const checks: Check[] = [];
  const timings: Record<string, { before: number; after: number }> = {};
  // Statements that probe every partition, per table: one finding per table, not one per statement.
  const unpruned = new Map<string, { total: number; names: string[] }>();
  ctx.smoke.forEach((item, i) => {
    const b = ctx.before!.plans[i];
    const a = after[i];
    if (!a.ok) return void checks.push(bad(item.name, `EXPLAIN failed after cutover: ${a.error}`));
    timings[item.name] = { before: b.ms, after: a.ms };
    const parts = a.partitions.map((p) => `${p.table}: ${p.scanned} of ${p.total} partitions`).join(', ') || 'no partitioned table';
    const time = `${b.ms} ms → ${a.ms} ms`;
    const pruned = a.partitions.every((p) => p.total <= 1 || p.scanned < p.total);
    if (item.expectPruning && !(a.partitions.length && a.partitions.every((p) => p.scanned <= 1))) {
      checks.push(bad(item.name, `partition pruning expected on a range of one partition, plan reads ${parts}`));
    } else if (!pruned) {
      checks.push(ok(item.name, `${parts} (no partition key in the query); ${time}`));
      for (const p of a.partitions.filter((x) => x.total > 1 && x.scanned === x.total)) {
        const u = unpruned.get(p.table) ?? { total: p.total, names: [] };
        u.names.push(item.name.replace(`${p.table}: `, ''));
        unpruned.set(p.table, u);
      }
    } else if (a.ms > 5 * b.ms && a.ms - b.ms > 20) checks.push(warn(item.name, `slower after cutover: ${time}; plan reads ${parts}`));
    else checks.push(ok(item.name, `${item.expectPruning ? 'pruned: ' : ''}${parts}; ${time}`));
  });
  for (const [table, u] of unpruned) {
    checks.push(
      warn(
        `${table} lookups`,
        `${u.names.join(', ')}: no partition key, so every one of the ${u.total} partitions is probed; add the key where the application knows it`,
      ),
    );
  }
  const frequent = await unprunedPlans(ctx);
  checks.push(...frequent.checks);
  const prunedCount = ctx.smoke.filter((s, i) => s.expectPruning && checks.find((c) => c.name === s.name)?.status === 'ok' && after[i].ok).length;
  return {
    summary: `${ctx.smoke.length} plans compared; ${prunedCount} range scan(s) pruned to one partition`,
    checks,
    details: { timings, ...(frequent.details.length ? { unpruned: frequent.details } : {}) },
  };
}

/**
 * The application's frequent statements without the partition key (pg_stat_statements): their
 * generic plans after cutover against before it, each a warning naming the partitions it visits.
 */
async function unprunedPlans(ctx: Ctx): Promise<{ checks: Check[]; details: Record<string, unknown>[] }> {
  const checks = ctx.unprunedNotes.map((n) => warn('frequent statements', n));
  const before = ctx.before?.unpruned;
  if (!ctx.unpruned.length || !before) return { checks, details: [] };
  const after = await quiet(ctx, () =>
    acts.smokePlans.executeWithOptions(opts(`performance: generic plans of ${ctx.unpruned.length} application statements after cutover`), [
      ctx.input.database,
      ctx.unpruned,
      ctx.plans,
    ]),
  );
  const details = ctx.unpruned.map((item, i) => {
    const [b, a] = [before[i], after[i]];
    const visits = a.partitions.map((p) => `${p.scanned} of ${p.total} partitions of ${p.table}`).join(', ') || a.relations.join(', ');
    checks.push(
      !b.ok || !a.ok
        ? warn(item.name, `EXPLAIN failed ${b.ok ? 'after' : 'before'} cutover: ${(b.ok ? a : b).error}; ${item.sql}`)
        : warn(
            item.name,
            `${item.sql}: before cutover ${b.relations.join(', ')} (cost ${b.totalCost}); after it ${visits} (cost ${a.totalCost}): add the partition key where the application knows it`,
          ),
    );
    return {
      name: item.name,
      sql: item.sql,
      before: { ok: b.ok, relations: b.relations, totalCost: b.totalCost },
      after: { ok: a.ok, partitions: a.partitions, totalCost: a.totalCost },
    };
  });
  return { checks, details };
}
