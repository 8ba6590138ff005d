// The attach strategy's cutoff as a deadline: from the CHECK until cutover, a write of the
// partition key at or after the cutoff fails, and the application writes up to `aheadDays` ahead
// of today (measured at preflight), so its writes reach the cutoff `aheadDays` before it. Pure,
// no imports: the workflows' status query and the cutover activity both use it.
import type { AttachPlan } from './types';

const DAY_MS = 86_400_000;

/** Less than this left at cutover: the cutover refuses (the rollback drops the CHECK) rather than race the cutoff. */
export const CUTOFF_MARGIN_MS = 3_600_000;

/** The instant (ms) after which the application's writes, as far ahead as it wrote at preflight, fail the CHECK. */
export function cutoffDeadlineMs(a: Pick<AttachPlan, 'cutoff' | 'aheadDays'>): number {
  return Date.parse(`${a.cutoff}T00:00:00Z`) - a.aheadDays * DAY_MS;
}

/** `3d 4h`, `2h 5m`, `12m`: a duration for a message or the status. */
export function humanDuration(ms: number): string {
  const m = Math.floor(Math.abs(ms) / 60000);
  const d = Math.floor(m / 1440);
  const h = Math.floor((m % 1440) / 60);
  const min = m % 60;
  return d ? `${d}d ${h}h` : h ? `${h}h ${min}m` : `${min}m`;
}

/** Per attach table of a status: the cutoff, its deadline, and the time left at `nowMs` (negative once passed). */
export function cutoffStatus(
  a: Pick<AttachPlan, 'cutoff' | 'aheadDays'>,
  nowMs: number,
): { cutoff: string; deadline: string; leftSeconds: number; left: string } {
  const deadline = cutoffDeadlineMs(a);
  const leftMs = deadline - nowMs;
  return {
    cutoff: a.cutoff,
    deadline: new Date(deadline).toISOString(),
    leftSeconds: Math.floor(leftMs / 1000),
    left: leftMs >= 0 ? humanDuration(leftMs) : `passed ${humanDuration(leftMs)} ago`,
  };
}
