// Pure builders of the rehearsal's marked rows (activities/marked.ts): clones of a real row with
// a negative id far below any sequence (the marker) and a partition key in the last premade
// partitions. Identifiers through src/sqlgen.ts.
import * as sql from './sqlgen';
import type { TablePlan } from './types';

/** Ids at or below this are ours; null when the key's first column is not an integer. */
export function markerBase(tp: TablePlan): number | null {
  if (!tp.splitColumn) return null;
  return sql.columnType(tp, tp.splitColumn) === 'smallint' ? -32000 : -2_000_000_000;
}

export function markedWhere(tp: TablePlan): string {
  return `${sql.ident(tp.splitColumn!)} <= ${markerBase(tp)}`;
}

/** `pk1 = 'v1'::type AND ...`: a key as literals (smoke statements are stored as text). */
export function keyLiteralWhere(tp: TablePlan, values: string[]): string {
  return tp.primaryKey.map((k, i) => `${sql.ident(k)} = ${sql.literal(values[i])}::${sql.columnType(tp, k)}`).join(' AND ');
}

/** The lower bound of a period partition (a day, not MINVALUE) as a literal of the key's type. */
export function keyLiteral(tp: TablePlan, day: string): string {
  return `${sql.boundLiteral(day, tp.keyType)}::${sql.columnType(tp, tp.partitionKey)}`;
}

/** The first row by primary key: its key values and partition key, as text. */
export function sampleRowSql(tp: TablePlan): string {
  const pk = tp.primaryKey.map((k) => `${sql.ident(k)}::text`).join(', ');
  return `SELECT ${pk}, ${sql.ident(tp.partitionKey)}::text FROM ${sql.qname(tp.schema, tp.table)} ORDER BY ${tp.primaryKey.map(sql.ident).join(', ')} LIMIT 1`;
}

/** A column the tests may rewrite: the first money column (`+ 1`), else the first non-key column (to itself). */
export function touchColumn(tp: TablePlan): { column: string; set: string } | null {
  const sum = tp.sumColumns[0];
  if (sum) return { column: sum, set: `${sql.ident(sum)} = ${sql.ident(sum)} + 1` };
  const other = tp.insertColumns.find((c) => !tp.partitionedKey.includes(c));
  return other ? { column: other, set: `${sql.ident(other)} = ${sql.ident(other)}` } : null;
}

/**
 * INSERT of a clone of the row at `sampleKey`, with id `id` and partition key `day`; with
 * `upsert`, ON CONFLICT on the primary key rewrites the touch column from the new values.
 */
export function cloneInsertSql(tp: TablePlan, opts: { sampleKey: string[]; id: number; day: string; upsert?: boolean }): string {
  const cols = tp.insertColumns;
  const exprs = cols.map((c) => {
    if (c === tp.splitColumn) return `${opts.id}::${sql.columnType(tp, c)}`;
    if (c === tp.partitionKey) return keyLiteral(tp, opts.day);
    return sql.ident(c);
  });
  const overriding = tp.columns.some((c) => c.identity === 'a') ? ' OVERRIDING SYSTEM VALUE' : '';
  const touch = touchColumn(tp);
  const conflict =
    opts.upsert && touch
      ? ` ON CONFLICT (${tp.primaryKey.map(sql.ident).join(', ')}) DO UPDATE SET ${sql.ident(touch.column)} = EXCLUDED.${sql.ident(touch.column)}`
      : '';
  return (
    `INSERT INTO ${sql.qname(tp.schema, tp.table)} (${cols.map(sql.ident).join(', ')})${overriding} ` +
    `SELECT ${exprs.join(', ')} FROM ${sql.qname(tp.schema, tp.table)} WHERE ${keyLiteralWhere(tp, opts.sampleKey)}${conflict}`
  );
}
