// Phase 8: the live writer on the switched-over tables for load.durationMs, then stopped: its
// writes, failures and latencies per segment (copy, verify, awaiting approval, cutover, after).
import { sleep } from '@temporalio/workflow';
import { bad, ok, warn, type PhaseOutcome } from '../../src/rehearsal-report';
import { steer, stopWriter, type Ctx } from './staging';

export async function load(ctx: Ctx): Promise<PhaseOutcome> {
  if (ctx.loadSkipped) {
    return {
      summary: `the load could not run: no operation of the mix can run on any table (${ctx.loadSkipped.join('; ')})`,
      checks: ctx.loadSkipped.map((why) => warn('not run', why)),
      skipped: true,
      details: { writes: 0, failedWrites: 0, skipped: ctx.loadSkipped },
    };
  }
  if (!ctx.writer) return { summary: 'no load configured: the live writer did not run', checks: [], skipped: true };
  await steer(ctx, 'running', 'after');
  await sleep(ctx.input.load!.durationMs);
  const r = await stopWriter(ctx);
  const lat = `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`;
  const stall = r.bySegment.cutover?.latencyMs.max;
  const checks = [
    r.writes > 0
      ? ok(
          'writes',
          `${r.writes} writes at ${r.opsPerSec} ops/s (${Object.entries(r.byKind)
            .map(([k, v]) => `${k} ${v.writes}`)
            .join(', ')})`,
        )
      : bad('writes', 'the load committed no write'),
    r.failedWrites ? bad('failed writes', `${r.failedWrites} failed; first: ${r.firstError}`) : ok('failed writes', 'none'),
    ok('latency', lat),
    ...Object.entries(r.bySegment).map(([k, v]) =>
      ok(
        `segment ${k}`,
        `${v.writes} writes, ${v.failedWrites} failed${v.firstError ? ` (first: ${v.firstError})` : ''}, p50 ${v.latencyMs.p50} ms, p99 ${v.latencyMs.p99} ms, max ${v.latencyMs.max} ms`,
      ),
    ),
    ...ctx.loadUnplanned.map((why) => warn('not run', why)),
    ...Object.entries(r.skipped).map(([k, why]) => warn(`not run: ${k}`, why)),
  ];
  const segments = Object.fromEntries(
    Object.entries(r.bySegment).map(([k, v]) => [
      k,
      { writes: v.writes, failedWrites: v.failedWrites, firstError: v.firstError, p50: v.latencyMs.p50, p99: v.latencyMs.p99, max: v.latencyMs.max },
    ]),
  );
  return {
    summary: `${r.writes} writes, ${r.failedWrites} failed, ${lat}${stall === undefined ? '' : `; writers stalled at most ${stall} ms at cutover`}`,
    checks,
    details: {
      writes: r.writes,
      failedWrites: r.failedWrites,
      firstError: r.firstError,
      latencyMs: r.latencyMs,
      segments,
      cutoverStallMs: stall ?? null,
      skipped: r.skipped,
    },
  };
}
