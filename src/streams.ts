// Copy streams: disjoint key ranges copied at once. Pure (the workflow plans them).
import type { CopyStream, TablePlan } from './types';

/** Splits the integer key range into `n` disjoint streams [lo, hi); one unbounded stream otherwise. */
export function copyStreamsFor(tp: TablePlan, n: number): CopyStream[] {
  if (!tp.splitColumn || !tp.splitRange || n <= 1) return [{ table: tp.table, stream: 0, lo: null, hi: null }];
  const min = BigInt(tp.splitRange.min);
  const max = BigInt(tp.splitRange.max);
  const span = max - min + 1n;
  const parts = BigInt(n) > span ? span : BigInt(n);
  const streams: CopyStream[] = [];
  for (let i = 0n; i < parts; i++) {
    const lo = min + (span * i) / parts;
    const hi = min + (span * (i + 1n)) / parts;
    // The first and last streams are open-ended so rows inserted beyond the range are copied too.
    streams.push({ table: tp.table, stream: Number(i), lo: i === 0n ? null : String(lo), hi: i === parts - 1n ? null : String(hi) });
  }
  return streams;
}
