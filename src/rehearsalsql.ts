// The rehearsal's dynamic SQL (activities/rehearsal-checks.ts): the marked rows of one side, the trigger
// test's writes, row counts and the sweep of marked rows. Pure rendering from a TablePlan; the
// marked-row predicate and the SET of the touched column come from activities/marked.ts.
import { ident, qname } from './sql';
import { rowHashExpr } from './sqlgen';
import type { TablePlan } from './types';

/** Key (as text), row hash and partition of every row the predicate `where` marks, by key. */
export function markedRowsSql(tp: TablePlan, table: string, where: string): string {
  const key = tp.primaryKey.map((k) => `${ident(k)}::text`).join(` || ',' || `);
  return `SELECT ${key} AS key, ${rowHashExpr(tp)}::text AS hash, tableoid::regclass::text AS part FROM ${qname(tp.schema, table)} WHERE ${where} ORDER BY 1`;
}

/** The trigger test's update of one marked row (`set`: the touched column's SET clause). */
export function updateMarkedSql(tp: TablePlan, set: string, id: number): string {
  return `UPDATE ${qname(tp.schema, tp.table)} SET ${set} WHERE ${ident(tp.splitColumn!)} = ${id}`;
}

/** The trigger test's key-moving update: the partition key of one marked row set to `keyLiteral`. */
export function moveMarkedSql(tp: TablePlan, keyLiteral: string, id: number): string {
  return `UPDATE ${qname(tp.schema, tp.table)} SET ${ident(tp.partitionKey)} = ${keyLiteral} WHERE ${ident(tp.splitColumn!)} = ${id}`;
}

/** The trigger test's delete of the marked rows `ids`. */
export function deleteMarkedSql(tp: TablePlan, ids: number[]): string {
  return `DELETE FROM ${qname(tp.schema, tp.table)} WHERE ${ident(tp.splitColumn!)} IN (${ids.join(', ')})`;
}

/** Deletes the rows `where` selects (the leftovers sweep: committed marked rows). */
export function deleteWhereSql(schema: string, table: string, where: string): string {
  return `DELETE FROM ${qname(schema, table)} WHERE ${where}`;
}
