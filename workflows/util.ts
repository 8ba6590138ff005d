// Small deterministic helpers for workflow code.
export { copyStreamsFor } from '../src/streams';

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/** "90s", "30m", "24h", "2d" → milliseconds (the input schema guarantees the shape). */
export function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * UNIT[m[2]];
}

/** The innermost useful message of a Temporal failure chain. */
export function errorMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  let msg = e?.message ?? String(err);
  // ActivityFailure says only "Activity task failed"; its cause has the real message.
  while (e?.cause && /^(Activity task failed|Child Workflow execution failed)/.test(e.message ?? '')) {
    e = e.cause as typeof e;
    msg = e?.message ?? msg;
  }
  return msg;
}
