// The history split's plan (README "Splitting the history partition"): the periods the history
// partition's rows span up to the attach cutoff, with `<table>_pmin` before them, the names the
// split uses, and the status the splitHistory workflow reports. Pure: workflows import it.
import { addIntervals, fitName, floorTo, isoDay, MAX_PARTITIONS, MINVALUE, partitionName, suffixFor } from './partitions';
import type { Interval } from './input';
import type { TablePlan } from './types';

/** One period table of the split: `from` is MINVALUE for `<table>_pmin`. */
export interface SplitPeriod {
  name: string;
  from: string;
  to: string;
}

/** Names of what the split makes, every one derived from the table's (shortened like partition names). */
export interface SplitNames {
  /** The internal partitioned table whose partitions the period tables are until cutover. */
  split: string;
  /** The history partition (the attach plan's name). */
  history: string;
  /** The history partition once detached at cutover, kept until cleanup. */
  historyLegacy: string;
  /** History → `<table>_split`, until cutover. */
  mirrorFunction: string;
  mirrorTrigger: string;
  /** Each period partition → `<table>_history_legacy`, from cutover until cleanup. */
  backFunction: string;
  backTrigger: string;
  /** `CHECK (key IS NOT NULL AND key < cutoff)` on the history partition: a rollback attaches it again without a scan. */
  historyCheck: string;
  /** The index on (key, primary key...) the copy reads in, when the history partition has none that begins with the key. */
  keyIndex: string;
}

/** A secondary index of the table, as the period tables get it (`using`: from `USING` on, as pg_get_indexdef gives it). */
export interface SplitIndex {
  name: string;
  unique: boolean;
  using: string;
}

export interface SplitPlan {
  schema: string;
  table: string;
  partitionKey: string;
  interval: Interval;
  cutoff: string;
  names: SplitNames;
  /** `<table>_pmin` first, then the periods oldest first, the last ending at the cutoff. */
  periods: SplitPeriod[];
  /** An index of the history partition that begins with the key (the copy reads in its order), or null: the split builds names.keyIndex. */
  keyIndexExisting: string | null;
  /** The history's rows (estimate) and its key's range (UTC days). */
  rowsEstimated: number;
  dataRange: { min: string | null; max: string | null };
  /** The table's secondary indexes and foreign keys, made on each period table before cutover. */
  indexes: SplitIndex[];
  foreignKeys: { name: string; definition: string }[];
  /** The attach switchover's plan of the table (columns, keys, owner). */
  tp: TablePlan;
}

export const SPLIT_PHASES = ['preflight', 'prepare', 'copy', 'indexes', 'cutover', 'retention', 'done', 'rolling_back', 'rolled_back', 'cleaned'] as const;
export type SplitPhase = (typeof SPLIT_PHASES)[number];

/** One period's verification: count and row hash of the history's rows in its range and of the period table, in one snapshot. */
export interface PeriodVerification {
  period: string;
  ok: boolean;
  historyRows: number;
  periodRows: number;
  historyHash: string;
  periodHash: string;
  ms: number;
}

export interface PeriodStatus extends SplitPeriod {
  state: 'pending' | 'copied' | 'verified';
  rowsCopied: number;
  batches: number;
  ms?: number;
  verification?: PeriodVerification;
}

/** The splitHistory workflow's `status`. */
export interface SplitStatus {
  phase: SplitPhase;
  table: string;
  mode: 'split' | 'rollback' | 'cleanup';
  dryRun: boolean;
  periods: PeriodStatus[];
  /** The cutover's lock time once made. */
  cutoverLockMs?: number;
  error?: string;
}

/** The split's names for a table whose history partition is `history`. */
export function splitNames(table: string, history: string): SplitNames {
  return {
    split: fitName(table, '_split'),
    history,
    historyLegacy: fitName(table, '_history_legacy'),
    mirrorFunction: fitName(table, '_split_mirror'),
    mirrorTrigger: 'ps_split_mirror',
    backFunction: fitName(table, '_split_back'),
    backTrigger: 'ps_split_back',
    historyCheck: fitName(history, '_split_bound'),
    keyIndex: fitName(history, '_split_key'),
  };
}

/** The CHECK a period table has until it is attached (its bound, so ATTACH does not scan). */
export function periodCheckName(period: string): string {
  return fitName(period, '_bound');
}

/** The name of a period table's copy of the table's `n`-th secondary index. */
export function periodIndexName(period: string, n: number): string {
  return fitName(period, `_i${n}`);
}

/**
 * The period tables for history keys from `min` (a UTC day, null for an empty history) up to the
 * cutoff: `<table>_pmin` from MINVALUE to the first period, then every period to the cutoff, so a
 * row written anywhere below the cutoff during the split has a period.
 */
export function splitPeriods(table: string, interval: Interval, min: string | null, cutoff: string): SplitPeriod[] {
  const end = new Date(`${cutoff}T00:00:00Z`);
  if (isoDay(floorTo(end, interval)) !== cutoff) throw new Error(`the cutoff ${cutoff} is not the start of a ${interval}`);
  const periods: SplitPeriod[] = [];
  if (min !== null && min < cutoff) {
    for (let start = floorTo(new Date(`${min}T00:00:00Z`), interval); start < end; start = addIntervals(start, interval, 1)) {
      if (periods.length >= MAX_PARTITIONS)
        throw new Error(`more than ${MAX_PARTITIONS} ${interval} periods from ${min} to ${cutoff}; choose a coarser interval`);
      periods.push({ name: partitionName(table, suffixFor(start, interval)), from: isoDay(start), to: isoDay(addIntervals(start, interval, 1)) });
    }
  }
  return [{ name: partitionName(table, 'pmin'), from: MINVALUE, to: periods[0]?.from ?? cutoff }, ...periods];
}
