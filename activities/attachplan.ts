// Preflight of the attach strategy: on top of the copy's plan and refusals (activities/preflight.ts),
// the cutoff, the two indexes, the partitions from the cutoff on, the disk it needs, and what
// only this strategy cannot do. Read-only.
import type pg from 'pg';
import { sqlFile } from '../src/db';
import type { SwitchoverInput } from '../src/input';
import {
  MAXVALUE,
  MINVALUE,
  addIntervals,
  fitName,
  floorTo,
  isoDay,
  partitionName,
  partitionRanges,
  withOpenEnds,
  type PartitionRange,
} from '../src/partitions';
import * as sql from '../src/sqlgen';
import type { AttachPlan, TablePlan } from '../src/types';
import { matviewsRefusedForAttach } from './matviews';

const DAY_MS = 86_400_000;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: DAY_MS };

/** "24h", "2d" (the input's duration shape) → milliseconds. */
function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/**
 * The cutoff: the first period boundary after today + how far ahead the application writes (the
 * newest row's distance from today, measured now) + the window the switchover itself may take
 * (the approval timeout plus a day). Between the CHECK and the cutover a row at or past the
 * cutoff is refused, so the application's own writes must stay below it for that long.
 */
export function chooseCutoff(opts: { today: string; max: string | null; interval: TablePlan['interval']; approvalTimeout: string }): {
  cutoff: string;
  aheadDays: number;
  windowDays: number;
  why: string;
} {
  const today = new Date(`${opts.today}T00:00:00Z`);
  const max = opts.max ? new Date(`${opts.max}T00:00:00Z`) : null;
  const aheadDays = max && max > today ? Math.round((max.getTime() - today.getTime()) / DAY_MS) : 0;
  const windowDays = Math.ceil(durationMs(opts.approvalTimeout) / DAY_MS) + 1;
  const horizon = new Date(today.getTime() + (aheadDays + windowDays) * DAY_MS);
  const cutoff = isoDay(addIntervals(floorTo(horizon, opts.interval), opts.interval, 1));
  const why =
    `the newest row is ${aheadDays} day${aheadDays === 1 ? '' : 's'} ahead of today (${opts.today}); the switchover may take ` +
    `${windowDays} day${windowDays === 1 ? '' : 's'} (approval.timeout ${opts.approvalTimeout} plus one); the cutoff is the first ` +
    `${opts.interval} boundary after ${isoDay(horizon)}, so writes the application makes as far ahead as it does now are accepted ` +
    `until cutover (a row at or after ${cutoff} is refused by the CHECK until then)`;
  return { cutoff, aheadDays, windowDays, why };
}

/** What refuses the attach strategy before any plan: no primary key (then nothing else), a deferrable one, inheritance. */
async function attachRefusals(db: pg.ClientBase, tp: TablePlan, tq: string): Promise<{ pk: { bytes: string } | undefined; problems: string[] }> {
  const t = `${tp.schema}.${tp.table}`;
  const problems: string[] = [];
  const pk = (await db.query(sqlFile('catalog/primary_key_index'), [tq])).rows[0];
  if (!pk) return { pk, problems: [`${t} has no primary key; the attach strategy needs one to build the unique index on (primary key, ${tp.partitionKey})`] };
  if (pk.condeferrable) {
    problems.push(
      `${t}'s primary key is DEFERRABLE; a deferrable key cannot be the unique index a partitioned table's primary key is checked against. ` +
        `Use "strategy": "copy", or make the key NOT DEFERRABLE first`,
    );
  }
  const inh = (await db.query(sqlFile('catalog/inheritance'), [tq])).rows[0].x;
  if (inh) problems.push(`${t} takes part in table inheritance; a table with inheritance parents or children cannot be attached as a partition`);
  return { pk, problems };
}

/** Disk the two unique indexes take: none when the key is in the primary key, else the primary key index scaled by the key's width. */
async function indexBytes(db: pg.ClientBase, tp: TablePlan, tq: string, pkBytes: number, keyInPk: boolean): Promise<number> {
  // Widths of the key columns (16 for variable-length ones), to scale the primary key index's size.
  const widths = (await db.query(sqlFile('catalog/attribute_widths'), [tq])).rows;
  const width = (c: string) => {
    const w = Number(widths.find((x) => x.attname === c)?.attlen ?? -1);
    return w > 0 ? w : 16;
  };
  const pkWidth = tp.primaryKey.reduce((a, c) => a + width(c), 0);
  return keyInPk ? 0 : pkBytes + Math.round((pkBytes * (pkWidth + width(tp.partitionKey))) / pkWidth);
}

/** The attach plan's names and partitions from the cutoff on (`periods`: the premade periods from the cutoff). */
function attachPlanOf(tp: TablePlan, c: ReturnType<typeof chooseCutoff>, periods: PartitionRange[], diskBytes: number, keyInPk: boolean): AttachPlan {
  const partitions = withOpenEnds(periods)
    .filter((p) => p.from !== MINVALUE)
    .map((p) => ({ ...p, name: partitionName(tp.table, p.suffix) }));
  const history = fitName(tp.table, '_history');
  return {
    cutoff: c.cutoff,
    aheadDays: c.aheadDays,
    windowDays: c.windowDays,
    why: c.why,
    history,
    check: fitName(tp.table, '_ps_before_cutoff'),
    keyIndex: keyInPk ? null : fitName(tp.table, '_ps_pkey_key'),
    historyPk: fitName(history, '_pkey'),
    pkIndex: keyInPk ? null : fitName(history, '_pk_unique'),
    historyIndexes: tp.indexes.filter((i) => !i.isPrimary).map((i) => ({ name: i.name, historyName: fitName(i.name, '_history') })),
    partitions,
    diskBytes,
  };
}

/** Every name the strategy makes must be free (the parent's temporary name too), and its CHECK's name on the table. */
async function takenNames(db: pg.ClientBase, tp: TablePlan, tq: string, attach: AttachPlan): Promise<string[]> {
  const t = `${tp.schema}.${tp.table}`;
  const problems: string[] = [];
  const names = [
    attach.history,
    attach.keyIndex,
    attach.historyPk,
    attach.pkIndex,
    tp.names.partitioned,
    ...attach.historyIndexes.map((h) => h.historyName),
    ...attach.partitions.map((p) => p.name),
  ].filter((x): x is string => !!x);
  const taken = (await db.query(sqlFile('catalog/relations'), [tp.schema, names])).rows;
  for (const r of taken) {
    problems.push(
      `${tp.schema}.${r.name} already exists; the attach switchover of ${t} would create it. Rename or drop it (if it is left from an earlier switchover, run the rollback workflow for that one), then start again`,
    );
  }
  const con = (await db.query(sqlFile('catalog/constraint_validated'), [tq, attach.check])).rows;
  if (con.length)
    problems.push(
      `constraint ${attach.check} already exists on ${t}; the attach switchover would add it. Drop it (or roll back the switchover that made it), then start again`,
    );
  return problems;
}

/** Sets the accepted plan on `tp`: `attach`, the partitions (the history one first), coverage lines and warnings. */
function applyAttachPlan(tp: TablePlan, attach: AttachPlan, periods: PartitionRange[], input: SwitchoverInput): void {
  const t = `${tp.schema}.${tp.table}`;
  const { cutoff, why, history, diskBytes } = attach;
  const last = periods[periods.length - 1];
  tp.attach = attach;
  tp.partitions = [{ suffix: 'history', name: history, from: MINVALUE, to: cutoff }, ...attach.partitions];
  tp.coverage = [
    `${tp.partitionKey} before ${cutoff}: ${history}, the table itself (same storage, renamed and attached as FROM (MINVALUE) TO (${cutoff})); ` +
      `data ${tp.dataRange.min ?? 'none'}..${tp.dataRange.max ?? 'none'}`,
    `${tp.partitionKey} ${cutoff}..${last.to}: ${periods.length} ${tp.interval} partitions made at cutover`,
    `${tp.partitionKey} from ${last.to}: ${partitionName(tp.table, 'pmax')} (${last.to}..${MAXVALUE}); maintainPartitions splits ${tp.interval}s out of it as they come`,
    `cutoff ${cutoff}: ${why}`,
  ];
  tp.warnings.push(
    `the history partition ${history} is one partition holding every row before ${cutoff}: retention by dropping old ${tp.interval}s ` +
      `starts at the cutoff (rows before it go only by DELETE, or all at once with the partition)`,
    `until cutover, a write of ${tp.partitionKey} at or after ${cutoff} into ${t} fails (the CHECK that proves the partition bound); ${why}`,
    `disk needed: about ${Math.ceil(diskBytes / 1048576)} MB for the two unique indexes (no second table)`,
  );
  if (input.backup === 'table') {
    tp.warnings.push(
      `"backup": "table" copies every row of ${t} into ${tp.names.backup} (a second table's disk and I/O); give "backup": "none" for a switchover without a copy`,
    );
  }
}

/** Plans the attach strategy for one table the copy's preflight accepted: sets `attach`, the partitions and plan lines, or returns why not. */
export async function planAttach(db: pg.ClientBase, tp: TablePlan, input: SwitchoverInput, today: string): Promise<string[]> {
  const tq = sql.qname(tp.schema, tp.table);
  const { pk, problems } = await attachRefusals(db, tp, tq);
  problems.push(...matviewsRefusedForAttach(tp));
  if (!pk) return problems;
  const chosen = chooseCutoff({ today, max: tp.dataRange.max, interval: tp.interval, approvalTimeout: input.approval.timeout });
  const periods = partitionRanges({ min: chosen.cutoff, max: chosen.cutoff, today: chosen.cutoff, interval: tp.interval, premake: input.premake });
  const keyInPk = tp.primaryKey.includes(tp.partitionKey);
  const diskBytes = await indexBytes(db, tp, tq, Number(pk.bytes), keyInPk);
  const attach = attachPlanOf(tp, chosen, periods, diskBytes, keyInPk);
  problems.push(...(await takenNames(db, tp, tq, attach)));
  if (problems.length) return problems;
  applyAttachPlan(tp, attach, periods, input);
  return [];
}
