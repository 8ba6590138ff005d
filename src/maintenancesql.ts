// Pure builders of partition maintenance's statements (activities/maintain-partitions.ts): moving rows
// out of a partition and back through the parent, `<table>_pmax` split, ANALYZE. Identifiers
// through src/sqlgen.ts.
import * as sql from './sqlgen';
import type { PartitionRange } from './partitions';
import type { TablePlan } from './types';

/** Rows of partition `from` matching `where`, counted (n). */
export function countWhereSql(tp: TablePlan, from: string, where: string): string {
  return `SELECT count(*)::bigint AS n FROM ${sql.qname(tp.schema, from)} WHERE ${where}`;
}

/** Rows of partition `from` matching `where` deleted into the temporary table ps_moved (dropped at commit). */
export function moveOutSql(tp: TablePlan, from: string, where: string): string {
  return `CREATE TEMP TABLE ps_moved ON COMMIT DROP AS WITH m AS (DELETE FROM ${sql.qname(tp.schema, from)} WHERE ${where} RETURNING *) SELECT * FROM m`;
}

/** The rows of ps_moved inserted again through the parent (routed to their partitions). */
export function moveBackSql(tp: TablePlan): string {
  const cols = tp.insertColumns.map(sql.ident).join(', ');
  return `INSERT INTO ${sql.qname(tp.schema, tp.table)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ps_moved`;
}

/** The partition key within `p`. */
export function inRangeWhere(tp: TablePlan, p: PartitionRange): string {
  const k = sql.ident(tp.partitionKey);
  return `${k} >= ${sql.boundLiteral(p.from, tp.keyType)} AND ${k} < ${sql.boundLiteral(p.to, tp.keyType)}`;
}

/** The partition key before `end` (YYYY-MM-DD). */
export function belowWhere(tp: TablePlan, end: string): string {
  return `${sql.ident(tp.partitionKey)} < ${sql.boundLiteral(end, tp.keyType)}`;
}

/** Partition `name` detached from the table. */
export function detachSql(tp: TablePlan, name: string): string {
  return `ALTER TABLE ${sql.qname(tp.schema, tp.table)} DETACH PARTITION ${sql.qname(tp.schema, name)}`;
}

/** Partition `name` attached again for the values from `from` (YYYY-MM-DD) on. */
export function attachToMaxSql(tp: TablePlan, name: string, from: string): string {
  return `ALTER TABLE ${sql.qname(tp.schema, tp.table)} ATTACH PARTITION ${sql.qname(tp.schema, name)} FOR VALUES FROM (${sql.boundLiteral(from, tp.keyType)}) TO (MAXVALUE)`;
}

/** ANALYZE of a table named already quoted (`"schema"."name"`). */
export function analyzeSql(table: string): string {
  return `ANALYZE ${table}`;
}

/** ANALYZE of a partitioned table that leaves out every partition another session holds locked (PostgreSQL 12+). */
export function analyzeSkipLockedSql(table: string): string {
  return `ANALYZE (SKIP_LOCKED) ${table}`;
}

/** SHARE UPDATE EXCLUSIVE (what ANALYZE takes) on tables named already quoted; `only`: not their partitions. */
export function lockForAnalyzeSql(tables: string[], only = false): string {
  return `LOCK TABLE ${only ? 'ONLY ' : ''}${tables.join(', ')} IN SHARE UPDATE EXCLUSIVE MODE`;
}
