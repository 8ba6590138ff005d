// SQL of the rehearsal's application checks (activities/smoke.ts): the built-in statements on a
// table's sample row and what runs around a statement. Pure, like sqlgen.ts: identifiers
// through ident()/qname(); `where` and bounds are SQL the caller built from literals
// (activities/marked.ts keyLiteralWhere, keyLiteral).
import type { TablePlan } from './types';
import { ident, qname } from './sql';

/** The sample row by its key (`where`). */
export function selectByKeySql(tp: TablePlan, where: string): string {
  return `SELECT * FROM ${qname(tp.schema, tp.table)} WHERE ${where}`;
}

/** The rows of one partition's range [from, to) of the partition key, in primary key order. */
export function rangeScanSql(tp: TablePlan, range: { from: string; to: string }): string {
  const key = ident(tp.partitionKey);
  return `SELECT * FROM ${qname(tp.schema, tp.table)} WHERE ${key} >= ${range.from} AND ${key} < ${range.to} ORDER BY ${tp.primaryKey.map(ident).join(', ')}`;
}

/** The sample row rewritten (`set`: activities/marked.ts touchColumn). */
export function updateByKeySql(tp: TablePlan, set: string, where: string): string {
  return `UPDATE ${qname(tp.schema, tp.table)} SET ${set} WHERE ${where}`;
}

export function deleteByKeySql(tp: TablePlan, where: string): string {
  return `DELETE FROM ${qname(tp.schema, tp.table)} WHERE ${where}`;
}

/** The table steps aside and `<table>_legacy` takes its name (in a transaction that is rolled back). */
export function legacyInPlaceSql(tp: TablePlan): string[] {
  return [
    `ALTER TABLE ${qname(tp.schema, tp.table)} RENAME TO ${ident(`${tp.table.slice(0, 40)}_ps_aside`)}`,
    `ALTER TABLE ${qname(tp.schema, tp.names.legacy)} RENAME TO ${ident(tp.table)}`,
  ];
}

/** The plan of a statement, not run, as JSON. */
export function explainSql(text: string): string {
  return `EXPLAIN (FORMAT JSON) ${text}`;
}
