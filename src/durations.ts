// Durations of the input ("90s", "30m", "24h", "2d"), shared by workflows and activities. Pure.

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/** The shape of a duration: a count and a unit. */
export const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** "90s", "30m", "24h", "2d" → milliseconds (the input schema guarantees the shape). */
export function durationMs(d: string): number {
  const m = DURATION.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * UNIT[m[2]];
}
