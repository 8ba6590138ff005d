// Pure part of retention (activities/retention.ts, README "Retention: old partitions detached or
// dropped"): `keep` as an interval, a partition's bounds read from the catalog, which partitions
// are ours and wholly older than the cutoff, and the statements. Identifiers through src/sql.ts.
import { ident, qname } from './sql';
import { boundLiteral } from './sqlgen';
import { addIntervals, isoDay, partitionName, suffixFor } from './partitions';
import type { TablePlan } from './types';

/** `keep` ("7 years", "1 month") as the interval text PostgreSQL reads (`7 years`, `1 months`). */
export function keepInterval(keep: string): string {
  const m = /^([1-9]\d{0,4}) (day|week|month|year)s?$/.exec(keep.trim());
  if (!m) throw new Error(`retention.keep ${JSON.stringify(keep)}: must be a count and a unit, e.g. "7 years"`);
  return `${m[1]} ${m[2]}s`;
}

/** A range partition's bounds, YYYY-MM-DD or MINVALUE / MAXVALUE; null for the default partition or a bound we cannot read. */
export function readBounds(expr: string): { from: string; to: string } | null {
  const v = `(MINVALUE|MAXVALUE|'(\\d{4}-\\d{2}-\\d{2})(?: 00:00:00(?:\\+00)?)?')`;
  const m = new RegExp(`^FOR VALUES FROM \\(${v}\\) TO \\(${v}\\)$`).exec(expr.trim());
  if (!m) return null;
  return { from: m[2] ?? m[1], to: m[4] ?? m[3] };
}

/** One child of the table as the catalog shows it. */
export interface RetentionChild {
  name: string;
  bound: string;
}

/** What retention does with one partition, or why it leaves it. */
export interface RetentionCandidate {
  partition: string;
  from: string;
  to: string;
}

/**
 * The name a partition of one period `from`..`to` of this table has when the switchover or
 * maintenance made it (the plan's name for that range, else `<table>_<suffix>`); null when the
 * range is not one period of the table's interval.
 */
export function ourName(tp: TablePlan, from: string, to: string): string | null {
  const planned = tp.partitions.find((p) => p.from === from && p.to === to);
  if (planned) return planned.name ?? partitionName(tp.table, planned.suffix);
  const start = new Date(`${from}T00:00:00Z`);
  if (isoDay(addIntervals(start, tp.interval, 1)) !== to) return null;
  return partitionName(tp.table, suffixFor(start, tp.interval));
}

/**
 * The table's children split by the cutoff (YYYY-MM-DD): `retire` holds the period partitions of
 * ours whose upper bound is at or before it; `kept` says why each other old-looking one stays
 * (`<table>_pmin`, a partition not ours); `straddling` is the partition the cutoff falls inside
 * (kept: reported with whether it holds rows inside keep). Later partitions are not mentioned.
 */
export function retentionCandidates(tp: TablePlan, children: RetentionChild[], cutoff: string) {
  const retire: RetentionCandidate[] = [];
  const kept: { partition: string; reason: string }[] = [];
  let straddling: RetentionCandidate | null = null;
  for (const c of children) {
    const b = readBounds(c.bound);
    if (b && b.from !== 'MINVALUE' && b.from < cutoff && b.to !== 'MAXVALUE' && b.to > cutoff) straddling = { partition: c.name, ...b };
    if (!b || b.to === 'MAXVALUE' || b.to > cutoff) continue;
    if (b.from === 'MINVALUE') {
      kept.push({ partition: c.name, reason: `holds every key before ${b.to} (MINVALUE..${b.to}); retention never detaches or drops it` });
    } else if (ourName(tp, b.from, b.to) !== c.name) {
      kept.push({
        partition: c.name,
        reason: `${b.from}..${b.to} is not a partition the switchover or maintenance made (its name or range is not ours); left`,
      });
    } else retire.push({ partition: c.name, from: b.from, to: b.to });
  }
  return { retire: retire.sort((a, b) => (a.from < b.from ? -1 : 1)), kept, straddling };
}

/** Whether partition `name` holds a row whose key is at or after `cutoff` (inside keep): `inside`. */
export function insideKeepSql(tp: TablePlan, name: string, cutoff: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${qname(tp.schema, name)} WHERE ${ident(tp.partitionKey)} >= ${boundLiteral(cutoff, tp.keyType)}) AS inside`;
}

/** Whether partition `name` holds any row: `any`. */
export function anyRowSql(tp: TablePlan, name: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${qname(tp.schema, name)}) AS any`;
}

/** DETACH PARTITION ... CONCURRENTLY (outside a transaction block; not with a default partition). */
export function detachConcurrentlySql(tp: TablePlan, name: string): string {
  return `ALTER TABLE ${qname(tp.schema, tp.table)} DETACH PARTITION ${qname(tp.schema, name)} CONCURRENTLY`;
}

/** Completes a DETACH ... CONCURRENTLY that was interrupted (the partition is left "detach pending"). */
export function finalizeDetachSql(tp: TablePlan, name: string): string {
  return `ALTER TABLE ${qname(tp.schema, tp.table)} DETACH PARTITION ${qname(tp.schema, name)} FINALIZE`;
}

/** A detached partition moved into the archive schema. */
export function archiveSql(schema: string, name: string, archiveSchema: string): string {
  return `ALTER TABLE ${qname(schema, name)} SET SCHEMA ${ident(archiveSchema)}`;
}

/** A partition dropped (its rows with it). */
export function dropPartitionSql(tp: TablePlan, name: string): string {
  return `DROP TABLE ${qname(tp.schema, name)}`;
}

/** What a DBA runs to put an archived partition back (README; the test runs it). */
export function reattachSql(tp: TablePlan, archiveSchema: string, c: RetentionCandidate): string[] {
  return [
    `ALTER TABLE ${qname(archiveSchema, c.partition)} SET SCHEMA ${ident(tp.schema)}`,
    `ALTER TABLE ${qname(tp.schema, tp.table)} ATTACH PARTITION ${qname(tp.schema, c.partition)} ` +
      `FOR VALUES FROM (${boundLiteral(c.from, tp.keyType)}) TO (${boundLiteral(c.to, tp.keyType)})`,
  ];
}
