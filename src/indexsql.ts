// SQL of the deferred index and foreign key build after the copy (activities/indexes.ts). Pure,
// like sqlgen.ts: identifiers through ident()/qname(); a foreign key's definition and referenced
// table are PostgreSQL's own text (pg_get_constraintdef), quoted there.
import { ident, qname } from './sql';

/** Drops an index a crash left invalid, without blocking writers. */
export function dropIndexConcurrentlySql(schema: string, name: string): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${qname(schema, name)}`;
}

/** Whether the table holds no row: `empty`. */
export function isEmptySql(schema: string, table: string): string {
  return `SELECT NOT EXISTS (SELECT 1 FROM ${qname(schema, table)}) AS empty`;
}

/** `table` (quoted, qualified) gets the foreign key; `notValid`: no row checked now (VALIDATE scans later). */
export function addForeignKeySql(table: string, fk: { name: string; definition: string }, opts: { notValid: boolean }): string {
  return `ALTER TABLE ${table} ADD CONSTRAINT ${ident(fk.name)} ${fk.definition}${opts.notValid ? ' NOT VALID' : ''}`;
}

/** One set-based scan of the rows against a NOT VALID constraint, under a lock writers pass. */
export function validateConstraintSql(schema: string, table: string, name: string): string {
  return `ALTER TABLE ${qname(schema, table)} VALIDATE CONSTRAINT ${ident(name)}`;
}

/** `table` (quoted, qualified): writers wait, readers go on. */
export function lockShareRowExclusiveSql(table: string): string {
  return `LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`;
}

/** `table` as a foreign key's definition names it (activities/indexes.ts referencedTable): readers wait too. */
export function lockAccessExclusiveSql(table: string): string {
  return `LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`;
}

/** A partition's index attached to the parent's index made ON ONLY (catalog only). */
export function attachPartitionIndexSql(schema: string, parentIndex: string, partitionIndex: string): string {
  return `ALTER INDEX ${qname(schema, parentIndex)} ATTACH PARTITION ${qname(schema, partitionIndex)}`;
}
