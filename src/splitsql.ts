// The history split's SQL (README "Splitting the history partition"): pure rendering from a
// SplitPlan. `<table>_split` and its period tables, the mirror trigger from the history partition,
// the keyset copy, the verification, the indexes, the cutover, the reverse mirror, rollback and
// cleanup. Run by activities/split.ts and activities/split-cutover.ts; identifiers through src/sql.ts.
import { ident, list, qname } from './sql';
import { alwaysSql, boundLiteral, columnType, revokeSql, storageSql, rowHashExpr, syncFunctionSql, triggerSql } from './sqlgen';
import { MINVALUE } from './partitions';
import { periodCheckName, periodIndexName, type SplitIndex, type SplitPeriod, type SplitPlan } from './splitplan';

const q = (p: SplitPlan, name: string) => qname(p.schema, name);
const key = (p: SplitPlan) => ident(p.partitionKey);
const lit = (p: SplitPlan, day: string) => boundLiteral(day, p.tp.keyType);
const ownerSql = (p: SplitPlan, name: string) => (p.tp.owner ? [`ALTER TABLE ${q(p, name)} OWNER TO ${ident(p.tp.owner)}`] : []);

/** The keys of one period as a condition: NOT NULL, at or after its start (none for pmin), before its end. */
export function periodBoundExpr(p: SplitPlan, period: SplitPeriod): string {
  const k = key(p);
  return [`${k} IS NOT NULL`, ...(period.from === MINVALUE ? [] : [`${k} >= ${lit(p, period.from)}`]), `${k} < ${lit(p, period.to)}`].join(' AND ');
}

/** `<table>_split`: shaped like the table, partitioned by its key, with the table's primary key (the mirror's upsert needs it). */
export function splitParentSql(p: SplitPlan): string[] {
  return [
    `CREATE TABLE ${q(p, p.names.split)} (LIKE ${q(p, p.table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED ` +
      `INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (${key(p)})`,
    `ALTER TABLE ${q(p, p.names.split)} ADD PRIMARY KEY (${list(p.tp.partitionedKey)})`,
    ...ownerSql(p, p.names.split),
  ];
}

/**
 * A period table: a partition of `<table>_split` (its primary key comes with it), with the CHECK
 * of its bound (empty: valid at once), the table's owner, and autovacuum off until its statistics
 * are gathered (splitIndexes), as the switchover's partitions, and the table's storage parameters (src/sqlgen.ts storageSql).
 */
export function periodTableSql(p: SplitPlan, period: SplitPeriod): string[] {
  return [
    `CREATE TABLE ${q(p, period.name)} PARTITION OF ${q(p, p.names.split)} FOR VALUES FROM (${lit(p, period.from)}) TO (${lit(p, period.to)})${storageSql(p.tp, { copied: true })}`,
    `ALTER TABLE ${q(p, period.name)} ADD CONSTRAINT ${ident(periodCheckName(period.name))} CHECK (${periodBoundExpr(p, period)})`,
    ...ownerSql(p, period.name),
  ];
}

/** The mirror: every change to the history partition applied to `<table>_split` (PostgreSQL routes it to its period). */
export function splitMirrorSql(p: SplitPlan): string[] {
  const n = p.names;
  return [
    syncFunctionSql({ schema: p.schema, fn: n.mirrorFunction, target: n.split, columns: p.tp.insertColumns, key: p.tp.partitionedKey }),
    revokeSql(p.schema, n.mirrorFunction),
    triggerSql(p.schema, n.history, n.mirrorTrigger, n.mirrorFunction),
    alwaysSql(p.schema, n.history, n.mirrorTrigger),
  ];
}

/** The history partition's bound as a CHECK, NOT VALID (a lock of milliseconds) then validated (a scan writers pass). */
export function historyCheckSql(p: SplitPlan): { add: string; validate: string } {
  const h = q(p, p.names.history);
  const c = ident(p.names.historyCheck);
  return {
    add: `ALTER TABLE ${h} ADD CONSTRAINT ${c} CHECK (${key(p)} IS NOT NULL AND ${key(p)} < ${lit(p, p.cutoff)}) NOT VALID`,
    validate: `ALTER TABLE ${h} VALIDATE CONSTRAINT ${c}`,
  };
}

/** The index the copy reads in, when the history partition has none beginning with the key (outside a transaction). */
export function keyIndexSql(p: SplitPlan): string {
  return `CREATE INDEX CONCURRENTLY ${ident(p.names.keyIndex)} ON ${q(p, p.names.history)} (${list([p.partitionKey, ...p.tp.primaryKey])})`;
}

/**
 * One copy batch of a period: the next `$n` history rows after the cursor (key, primary key...)
 * in that order, locked FOR SHARE (a row deleted or moved meanwhile waits, then is skipped), into
 * the period table; ON CONFLICT DO NOTHING keeps a newer row the mirror wrote. Params: the
 * cursor's key and primary key (when `withCursor`), then the limit. `last`: the batch's last
 * (key, primary key...) as text.
 */
export function splitBatchSql(p: SplitPlan, period: SplitPeriod, withCursor: boolean): string {
  const order = [p.partitionKey, ...p.tp.primaryKey];
  const params = order.map((c, i) => `$${i + 1}::${columnType(p.tp, c)}`);
  const where = [periodBoundExpr(p, period), ...(withCursor ? [`${key(p)} >= ${params[0]}`, `(${list(order)}) > (${params.join(', ')})`] : [])];
  const cols = list(p.tp.insertColumns);
  return [
    `WITH batch AS (`,
    `  SELECT ${cols} FROM ${q(p, p.names.history)}`,
    `  WHERE ${where.join(' AND ')}`,
    `  ORDER BY ${list(order)} LIMIT $${withCursor ? order.length + 1 : 1} FOR SHARE`,
    `), ins AS (`,
    `  INSERT INTO ${q(p, period.name)} (${cols}) SELECT ${cols} FROM batch ON CONFLICT DO NOTHING RETURNING 1`,
    `)`,
    `SELECT (SELECT count(*) FROM batch)::int AS rows, (SELECT count(*) FROM ins)::int AS inserted,`,
    `  (SELECT json_build_array(${order.map((c) => `${ident(c)}::text`).join(', ')}) FROM batch ORDER BY ${order.map((c) => `${ident(c)} DESC`).join(', ')} LIMIT 1) AS last`,
  ].join('\n');
}

/** Count and row hash of the history's rows of a period (`history`) and of the period table (`period`): run in one snapshot. */
export function periodVerifySql(p: SplitPlan, period: SplitPeriod): { history: string; period: string } {
  const sums = `count(*)::bigint AS rows, coalesce(sum(${rowHashExpr(p.tp)}), 0)::text AS row_hash`;
  return {
    history: `SELECT ${sums} FROM ${q(p, p.names.history)} WHERE ${periodBoundExpr(p, period)}`,
    period: `SELECT ${sums} FROM ${q(p, period.name)}`,
  };
}

/** The table's `n`-th secondary index on a period table, CONCURRENTLY (outside a transaction): ATTACH then finds it and builds nothing. */
export function periodIndexSql(p: SplitPlan, period: SplitPeriod, i: SplitIndex, n: number): { name: string; sql: string } {
  const name = periodIndexName(period.name, n);
  return { name, sql: `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${ident(name)} ON ${q(p, period.name)} ${i.using}` };
}

/** A foreign key of the table on a period table: NOT VALID (a short lock), then validated (ATTACH then checks nothing under its lock). */
export function periodForeignKeySql(p: SplitPlan, period: SplitPeriod, fk: { name: string; definition: string }): { add: string; validate: string } {
  return {
    add: `ALTER TABLE ${q(p, period.name)} ADD CONSTRAINT ${ident(fk.name)} ${fk.definition} NOT VALID`,
    validate: `ALTER TABLE ${q(p, period.name)} VALIDATE CONSTRAINT ${ident(fk.name)}`,
  };
}

/** ACCESS EXCLUSIVE on the table, then the history partition and the tables of the split, as writers lock them. */
export function splitLockSql(p: SplitPlan, names: string[]): string {
  return `LOCK TABLE ${[p.table, ...names].map((n) => q(p, n)).join(', ')} IN ACCESS EXCLUSIVE MODE`;
}

/** The reverse mirror's function: each period partition → `<table>_history_legacy` (made at prepare, fired from cutover on). */
export function backFunctionSql(p: SplitPlan): string[] {
  return [
    syncFunctionSql({
      schema: p.schema,
      fn: p.names.backFunction,
      target: p.names.historyLegacy,
      columns: p.tp.insertColumns,
      key: p.tp.partitionedKey,
      overridingSystemValue: p.tp.columns.some((c) => c.identity === 'a'),
    }),
    revokeSql(p.schema, p.names.backFunction),
  ];
}

/**
 * The cutover once the table, the history partition and `<table>_split` are locked: the mirror
 * dropped, each period detached from `<table>_split` (dropped, empty), the history partition
 * detached and renamed `<table>_history_legacy`, each period attached (no scan: its CHECK proves
 * the bound; dropped after), the reverse mirror on each.
 */
export function splitCutoverSql(p: SplitPlan): string[] {
  const n = p.names;
  const t = q(p, p.table);
  return [
    `DROP TRIGGER ${ident(n.mirrorTrigger)} ON ${q(p, n.history)}`,
    `DROP FUNCTION ${q(p, n.mirrorFunction)}()`,
    ...p.periods.map((x) => `ALTER TABLE ${q(p, n.split)} DETACH PARTITION ${q(p, x.name)}`),
    `DROP TABLE ${q(p, n.split)}`,
    `ALTER TABLE ${t} DETACH PARTITION ${q(p, n.history)}`,
    `ALTER TABLE ${q(p, n.history)} RENAME TO ${ident(n.historyLegacy)}`,
    ...p.periods.map((x) => `ALTER TABLE ${t} ATTACH PARTITION ${q(p, x.name)} FOR VALUES FROM (${lit(p, x.from)}) TO (${lit(p, x.to)})`),
    ...p.periods.map((x) => `ALTER TABLE ${q(p, x.name)} DROP CONSTRAINT ${ident(periodCheckName(x.name))}`),
    ...p.periods.flatMap((x) => [triggerSql(p.schema, x.name, n.backTrigger, n.backFunction), alwaysSql(p.schema, x.name, n.backTrigger)]),
  ];
}

/** Rollback before cutover, once the history partition is locked: the mirror, then `<table>_split` with its periods, the CHECK (the caller drops the key index if ours). */
export function rollbackBeforeCutoverSql(p: SplitPlan, dropSplit: boolean): string[] {
  const n = p.names;
  return [
    `DROP TRIGGER IF EXISTS ${ident(n.mirrorTrigger)} ON ${q(p, n.history)}`,
    `DROP FUNCTION IF EXISTS ${q(p, n.mirrorFunction)}()`,
    `DROP FUNCTION IF EXISTS ${q(p, n.backFunction)}()`,
    ...(dropSplit ? [`DROP TABLE ${q(p, n.split)}`] : []),
    `ALTER TABLE ${q(p, n.history)} DROP CONSTRAINT IF EXISTS ${ident(n.historyCheck)}`,
  ];
}

/**
 * Rollback after cutover, once the table, its periods (`attached`: ours, still its partitions) and
 * `<table>_history_legacy` are locked: the reverse mirror dropped, the periods detached,
 * `<table>_history_legacy` renamed back and attached FROM (MINVALUE) TO (cutoff) (no scan: its
 * validated CHECK, dropped after), then the periods dropped. The reverse mirror carried every
 * write since cutover: no row moves.
 */
export function rollbackAfterCutoverSql(p: SplitPlan, attached: string[]): string[] {
  const n = p.names;
  const t = q(p, p.table);
  return [
    `DROP FUNCTION IF EXISTS ${q(p, n.backFunction)}() CASCADE`,
    ...attached.map((x) => `ALTER TABLE ${t} DETACH PARTITION ${q(p, x)}`),
    `ALTER TABLE ${q(p, n.historyLegacy)} RENAME TO ${ident(n.history)}`,
    `ALTER TABLE ${t} ATTACH PARTITION ${q(p, n.history)} FOR VALUES FROM (MINVALUE) TO (${lit(p, p.cutoff)})`,
    `ALTER TABLE ${q(p, n.history)} DROP CONSTRAINT IF EXISTS ${ident(n.historyCheck)}`,
    ...attached.map((x) => `DROP TABLE ${q(p, x)}`),
  ];
}

/** Cleanup: the reverse mirror (its triggers go with the function), then `<table>_history_legacy` (the caller checks it is ours). */
export function splitCleanupSql(p: SplitPlan): { triggers: string; legacy: string } {
  return { triggers: `DROP FUNCTION IF EXISTS ${q(p, p.names.backFunction)}() CASCADE`, legacy: `DROP TABLE ${q(p, p.names.historyLegacy)}` };
}

/** An index of ours on the history partition (the key index), dropped by the rollback. */
export function dropSplitIndexSql(p: SplitPlan): string {
  return `DROP INDEX IF EXISTS ${q(p, p.names.keyIndex)}`;
}

/** The history's key range (UTC days) in one read: `min`, `max` (run with timezone UTC). */
export function historyRangeSql(p: SplitPlan | { schema: string; partitionKey: string }, history: string): string {
  const k = ident(p.partitionKey);
  return `SELECT min(${k})::date::text AS min, max(${k})::date::text AS max FROM ${qname(p.schema, history)}`;
}
