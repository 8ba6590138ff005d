// Pure SQL builders for preflight's own read-only checks (run by activities/preflight.ts).
// Identifiers through src/sql.ts.
import { ident, qname } from './sql';

/** A NOT VALID constraint as sql/catalog/not_valid.sql returns it. */
export interface NotValidConstraint {
  name: string;
  type: 'c' | 'f';
  check_expr: string | null;
  columns: string[] | null;
  ref_schema: string | null;
  ref_table: string | null;
  ref_columns: string[] | null;
  match: string;
}

/**
 * The rows of the table that violate a NOT VALID constraint, as the WHERE clause of a query on
 * `schema.table` aliased `t`: for a CHECK, the rows where the expression is false (NULL passes,
 * as in PostgreSQL); for a foreign key, the rows with a key and no referenced row (MATCH SIMPLE:
 * any NULL column passes; MATCH FULL: all NULL passes, some NULL fails).
 */
export function violationWhere(c: NotValidConstraint): string {
  if (c.type === 'c') return `NOT (${c.check_expr})`;
  const cols = c.columns ?? [];
  const refCols = c.ref_columns ?? [];
  const missing =
    `NOT EXISTS (SELECT 1 FROM ${qname(c.ref_schema!, c.ref_table!)} r WHERE ` +
    cols.map((col, i) => `r.${ident(refCols[i])} = t.${ident(col)}`).join(' AND ') +
    ')';
  const allSet = cols.map((col) => `t.${ident(col)} IS NOT NULL`).join(' AND ');
  if (c.match !== 'f') return `${allSet} AND ${missing}`;
  const anySet = cols.map((col) => `t.${ident(col)} IS NOT NULL`).join(' OR ');
  return `(${anySet}) AND (NOT (${allSet}) OR ${missing})`;
}

/** How many rows violate the constraint (the scan stops at `limit`). */
export function violationCountSql(schema: string, table: string, c: NotValidConstraint, limit = 1000): string {
  return `SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ${qname(schema, table)} t WHERE ${violationWhere(c)} LIMIT ${Math.trunc(limit)}) v`;
}

/** The query a DBA runs to see the violating rows. */
export function violationSelectSql(schema: string, table: string, c: NotValidConstraint): string {
  return `SELECT * FROM ${qname(schema, table)} t WHERE ${violationWhere(c)}`;
}


