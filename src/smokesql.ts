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

/**
 * An application statement as pg_stat_statements keeps it (`$1`, `$2` for its constants) prepared
 * under `name`, then its generic plan (the one for any value) with NULL for every parameter, and
 * the prepared statement dropped: planned, never run.
 */
export function genericPlanSql(name: string, text: string): { prepare: string; explain: string; deallocate: string } {
  const n = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
  const args = n ? `(${Array.from({ length: n }, () => 'NULL').join(', ')})` : '';
  return {
    prepare: `PREPARE ${ident(name)} AS ${text}`,
    explain: `EXPLAIN (FORMAT JSON) EXECUTE ${ident(name)}${args}`,
    deallocate: `DEALLOCATE ${ident(name)}`,
  };
}
