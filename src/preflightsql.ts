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

/** Up to 5000 of pg_stat_statements' statements (in the extension's schema) with an ON CONFLICT clause. */
export function conflictStatementsSql(extSchema: string): string {
  // This database's statements only: the view shows every database of the server.
  return `select query from ${qname(extSchema, 'pg_stat_statements')} where dbid = (select oid from pg_database where datname = current_database()) and query ~* 'on\\s+conflict' limit 5000`;
}

/**
 * One all-NULL row of the table's type with `expr` evaluated on it: fails (42883) when a column's
 * type has no extended hash function.
 */
export function hashProbeSql(schema: string, table: string, expr: string): string {
  return `SELECT ${expr} AS h FROM (SELECT * FROM ${qname(schema, table)} LIMIT 0) t RIGHT JOIN (VALUES (1)) v(ps_probe) ON true`;
}

/**
 * The days of the partition key's least and greatest values (in UTC for timestamptz), as text,
 * and whether a row has none (`notNull`: the column cannot, so not read).
 */
export function keyRangeSql(schema: string, table: string, key: string, opts: { utc: boolean; notNull: boolean }): string {
  const k = ident(key);
  const tq = qname(schema, table);
  const day = (e: string) => (opts.utc ? `(${e} at time zone 'UTC')::date` : `${e}::date`);
  return (
    `select ${day(`min(${k})`)}::text as min, ${day(`max(${k})`)}::text as max` +
    (opts.notNull ? ', false as has_nulls' : `, exists (select 1 from ${tq} where ${k} is null) as has_nulls`) +
    ` from ${tq}`
  );
}

/** Distinct values of `column` among 10,000 rows of the table, and how many rows were read. */
export function distinctSampleSql(schema: string, table: string, column: string): string {
  const c = ident(column);
  return `select count(distinct ${c})::float8 as n_distinct, count(*)::float8 as n from (select ${c} from ${qname(schema, table)} limit 10000) s`;
}

/** The least and greatest values of `column`, as text. */
export function columnRangeSql(schema: string, table: string, column: string): string {
  return `select min(${ident(column)})::text as min, max(${ident(column)})::text as max from ${qname(schema, table)}`;
}
