// SQL of the cutover's own reads (activities/cutover.ts); its statements under the lock are in
// sqlgen.ts (cutoverSql, lockSql). Pure: identifiers through qname().
import { qname } from './sql';

/** The rows of one table, as n (the cutover counts the table and its copy in one snapshot). */
export function rowCountSql(schema: string, table: string): string {
  return `SELECT count(*) AS n FROM ${qname(schema, table)}`;
}
