// Partition ranges: pure date arithmetic in UTC, shared by preflight, the maintenance workflow and tests.
import { createHash } from 'node:crypto';
import type { Interval } from './input';

export interface PartitionRange {
  /** Suffix of the partition's name, e.g. `p202401`, or `pmin` / `pmax` for the open ends. */
  suffix: string;
  /** The partition's name, as preflight planned it (absent in older plans and maintenance ranges). */
  name?: string;
  /** Inclusive lower bound, `YYYY-MM-DD`, or `MINVALUE` (the `pmin` partition). */
  from: string;
  /** Exclusive upper bound, `YYYY-MM-DD`, or `MAXVALUE` (the `pmax` partition). */
  to: string;
}

// Open ends of the range partitions: every non-NULL key has a partition (plans recorded before
// these existed have period partitions only, and still load).
export const MINVALUE = 'MINVALUE';
export const MAXVALUE = 'MAXVALUE';

/** True for a period partition (both bounds are days), false for `pmin` / `pmax`. */
export function isPeriod(p: PartitionRange): boolean {
  return p.from !== MINVALUE && p.to !== MAXVALUE;
}

/** The period ranges with `pmin` (MINVALUE to the first bound) before and `pmax` (last bound to MAXVALUE) after. */
export function withOpenEnds(ranges: PartitionRange[]): PartitionRange[] {
  if (!ranges.length) return ranges;
  return [{ suffix: 'pmin', from: MINVALUE, to: ranges[0].from }, ...ranges, { suffix: 'pmax', from: ranges[ranges.length - 1].to, to: MAXVALUE }];
}

/** Plan lines: which partition each range of keys goes to, and what has no home. */
export function coverageLines(opts: {
  table: string;
  partitionKey: string;
  interval: Interval;
  partitions: PartitionRange[];
  dataRange: { min: string | null; max: string | null };
  premake: number;
}): string[] {
  const periods = opts.partitions.filter(isPeriod);
  const min = opts.partitions.find((p) => p.from === MINVALUE);
  const max = opts.partitions.find((p) => p.to === MAXVALUE);
  const first = periods[0];
  const last = periods[periods.length - 1];
  const lines = [
    `${opts.partitionKey} before ${first.from}: ${partitionName(opts.table, 'pmin')} (MINVALUE..${first.from})`,
    `${opts.partitionKey} ${first.from}..${last.to}: ${periods.length} ${opts.interval} partitions ` +
      `(data ${opts.dataRange.min ?? 'none'}..${opts.dataRange.max ?? 'none'}, then ${opts.premake} premade ${opts.interval}${opts.premake === 1 ? '' : 's'})`,
    `${opts.partitionKey} from ${last.to}: ${partitionName(opts.table, 'pmax')} (${last.to}..MAXVALUE); ` +
      `maintainPartitions splits ${opts.interval}s out of it as they come`,
  ];
  if (!min || !max) return [`${opts.partitionKey} outside ${first.from}..${last.to} has no partition`];
  return [...lines, `every value of ${opts.partitionKey} has a partition; NULL is refused (the key is NOT NULL)`];
}

export const MAX_PARTITIONS = 5000;

function parse(day: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a YYYY-MM-DD date: ${day}`);
  return new Date(`${day}T00:00:00Z`);
}

export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The start of the period holding `d` (weeks start on Monday). */
export function floorTo(d: Date, interval: Interval): Date {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  switch (interval) {
    case 'day':
      return new Date(Date.UTC(y, m, d.getUTCDate()));
    case 'week': {
      const day = new Date(Date.UTC(y, m, d.getUTCDate()));
      const sinceMonday = (day.getUTCDay() + 6) % 7;
      return new Date(day.getTime() - sinceMonday * 86400000);
    }
    case 'month':
      return new Date(Date.UTC(y, m, 1));
    case 'quarter':
      return new Date(Date.UTC(y, m - (m % 3), 1));
    case 'year':
      return new Date(Date.UTC(y, 0, 1));
  }
}

export function addIntervals(d: Date, interval: Interval, n: number): Date {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  switch (interval) {
    case 'day':
      return new Date(Date.UTC(y, m, day + n));
    case 'week':
      return new Date(Date.UTC(y, m, day + 7 * n));
    case 'month':
      return new Date(Date.UTC(y, m + n, day));
    case 'quarter':
      return new Date(Date.UTC(y, m + 3 * n, day));
    case 'year':
      return new Date(Date.UTC(y + n, m, day));
  }
}

export function suffixFor(start: Date, interval: Interval): string {
  const ymd = isoDay(start).replace(/-/g, '');
  switch (interval) {
    case 'day':
    case 'week':
      return `p${ymd}`;
    case 'month':
      return `p${ymd.slice(0, 6)}`;
    case 'quarter':
      return `p${ymd.slice(0, 4)}q${Math.floor(start.getUTCMonth() / 3) + 1}`;
    case 'year':
      return `p${ymd.slice(0, 4)}`;
  }
}

/**
 * Ranges covering [min, max] of the data and on through `today` plus `premake` further periods.
 * An empty table (min/max null) gets the current period plus the premade ones.
 */
export function partitionRanges(opts: { min: string | null; max: string | null; today: string; interval: Interval; premake: number }): PartitionRange[] {
  const { interval } = opts;
  const today = parse(opts.today);
  const first = floorTo(opts.min ? parse(opts.min) : today, interval);
  const lastData = opts.max ? parse(opts.max) : today;
  const last = floorTo(lastData > today ? lastData : today, interval);
  const end = addIntervals(last, interval, opts.premake + 1);
  const ranges: PartitionRange[] = [];
  for (let start = first; start < end; start = addIntervals(start, interval, 1)) {
    if (ranges.length >= MAX_PARTITIONS) {
      throw new Error(`more than ${MAX_PARTITIONS} ${interval} partitions would be needed from ${isoDay(first)} to ${isoDay(end)}; choose a coarser interval`);
    }
    ranges.push({ suffix: suffixFor(start, interval), from: isoDay(start), to: isoDay(addIntervals(start, interval, 1)) });
  }
  return ranges;
}

/** `<table>_<suffix>`; a name that would not fit PostgreSQL's 63 bytes is shortened by fitName. */
export function partitionName(table: string, suffix: string): string {
  return fitName(table, `_${suffix}`);
}

/** The longest prefix of `s` of at most `bytes` UTF-8 bytes, never splitting a character. */
function cutBytes(s: string, bytes: number): string {
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > bytes) break;
    out += ch;
  }
  return out;
}

/**
 * `base + suffix` when it fits in 63 bytes; otherwise the first 40 bytes of `base`, `_`, 6 hex
 * characters of md5(base), then `suffix`: two long names with a common prefix stay distinct
 * (plain truncation made them collide).
 */
export function fitName(base: string, suffix: string): string {
  if (Buffer.byteLength(base + suffix) <= 63) return base + suffix;
  const hash = createHash('md5').update(base).digest('hex').slice(0, 6);
  return `${cutBytes(base, 40)}_${hash}${cutBytes(suffix, 63 - 47)}`;
}

/**
 * Relations each partition brings into a transaction that creates or drops it, each one a lock
 * held until commit: the table, its TOAST table and TOAST index (counted whether or not the
 * columns need one), and each of its indexes (at least the primary key's).
 */
export function relationsPerPartition(indexes: number): number {
  return 3 + Math.max(1, indexes);
}

/**
 * Partitions per transaction when we create or drop them. The server's lock table holds
 * max_locks_per_transaction × (max_connections + max_prepared_transactions) locks for every
 * session together (one transaction may take more than its share, but only what is free), so a
 * batch of ours takes at most 2 × max_locks_per_transaction of them.
 */
export function partitionsPerTransaction(maxLocksPerTransaction: number, relations: number): number {
  return Math.max(1, Math.floor((2 * maxLocksPerTransaction) / Math.max(1, relations)));
}

/** `items` in consecutive slices of at most `size`. */
export function batches<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)));
  return out;
}
