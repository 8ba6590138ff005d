// The key table that carries the foreign keys of other tables referencing a table through the
// switchover (README "Foreign keys into the table: the key table"): `<table>_keys`, made at
// prepare with the triggers on `<table>_partitioned` that keep it equal to that table's keys, and
// each referencing foreign key re-pointed at it at cutover and back at rollback. Pure rendering;
// activities/keytable.ts reads the catalog and runs it.
import { ident, list, qname } from './sql';
import { fitName } from './partitions';
import type { IncomingForeignKey, KeyTablePlan, TablePlan } from './types';

/** Our triggers on the partitioned table: inserted and deleted rows by statement (transition tables), a key update by row. */
export const KEY_TRIGGERS = { insert: 'ps_keys_insert', delete: 'ps_keys_delete', update: 'ps_keys_update' } as const;

/** `<table>_keys` and its trigger function `<table>_ps_keys` (hashed when they would not fit 63 bytes). */
export function keyTableNames(table: string): { table: string; fn: string } {
  return { table: fitName(table, '_keys'), fn: fitName(table, '_ps_keys') };
}

/**
 * The trigger function: a statement's inserted rows add their keys (a key another row has fails
 * with unique_violation, as the table's own primary key did), its deleted rows remove theirs (the
 * referencing foreign keys' ON DELETE actions fire from there), and a row whose key changes
 * updates its key row (ON UPDATE actions). A row moved to another partition by an UPDATE is in
 * neither statement's transition table, so its key stays.
 */
export function keyFunctionSql(tp: TablePlan, kt: KeyTablePlan): string {
  const keys = qname(tp.schema, kt.table);
  const cols = kt.columns.map((c) => c.name);
  const match = (a: string, b: string) => cols.map((c) => `${a}.${ident(c)} = ${b}.${ident(c)}`).join(' AND ');
  return [
    // SECURITY DEFINER: a role that may write the table need not have any right on the key table.
    `CREATE OR REPLACE FUNCTION ${qname(tp.schema, kt.fn)}() RETURNS trigger LANGUAGE plpgsql`,
    `  SECURITY DEFINER SET search_path = pg_catalog, ${ident(tp.schema)}, pg_temp AS $ps$`,
    `BEGIN`,
    `  IF TG_OP = 'UPDATE' THEN`,
    `    UPDATE ${keys} k SET ${cols.map((c) => `${ident(c)} = NEW.${ident(c)}`).join(', ')} WHERE ${match('k', 'OLD')};`,
    `    RETURN NEW;`,
    `  ELSIF TG_OP = 'INSERT' THEN`,
    `    INSERT INTO ${keys} (${list(cols)}) SELECT ${list(cols)} FROM ps_new;`,
    `  ELSE`,
    `    DELETE FROM ${keys} k USING ps_old o WHERE ${match('k', 'o')};`,
    `  END IF;`,
    `  RETURN NULL;`,
    `END`,
    `$ps$`,
  ].join('\n');
}

/**
 * Prepare's statements (with `<table>_partitioned`, before any row is in it): the key table, owned
 * like the table (a foreign key check reads it as its owner), the function, and the triggers,
 * enabled ALWAYS (a writer with session_replication_role = replica keeps it too). The row
 * trigger is cloned, enabled ALWAYS, onto every partition made after it.
 */
export function keyTableSql(tp: TablePlan, kt: KeyTablePlan): string[] {
  const keys = qname(tp.schema, kt.table);
  const on = qname(tp.schema, tp.names.partitioned);
  const fn = qname(tp.schema, kt.fn);
  const cols = kt.columns.map((c) => c.name);
  const always = (t: string) => `ALTER TABLE ${on} ENABLE ALWAYS TRIGGER ${ident(t)}`;
  return [
    `CREATE TABLE ${keys} (${kt.columns.map((c) => `${ident(c.name)} ${c.type} NOT NULL`).join(', ')}, PRIMARY KEY (${list(cols)}))`,
    ...(tp.owner ? [`ALTER TABLE ${keys} OWNER TO ${ident(tp.owner)}`] : []),
    keyFunctionSql(tp, kt),
    `REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`,
    `CREATE TRIGGER ${ident(KEY_TRIGGERS.insert)} AFTER INSERT ON ${on} REFERENCING NEW TABLE AS ps_new FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE TRIGGER ${ident(KEY_TRIGGERS.delete)} AFTER DELETE ON ${on} REFERENCING OLD TABLE AS ps_old FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE TRIGGER ${ident(KEY_TRIGGERS.update)} BEFORE UPDATE OF ${list(cols)} ON ${on} FOR EACH ROW ` +
      `WHEN ((${list(cols, 'OLD.')}) IS DISTINCT FROM (${list(cols, 'NEW.')})) EXECUTE FUNCTION ${fn}()`,
    ...Object.values(KEY_TRIGGERS).map(always),
  ];
}

/** The rollback's drop of what prepare made (the key table itself goes by dropIfOurs, after its foreign keys point back). */
export function dropKeyFunctionSql(tp: TablePlan, kt: KeyTablePlan): string {
  // CASCADE: its triggers, on whichever of our tables still has them.
  return `DROP FUNCTION IF EXISTS ${qname(tp.schema, kt.fn)}() CASCADE`;
}

/**
 * A foreign key's definition (pg_get_constraintdef, read with search_path = pg_catalog, so its
 * target `from` is schema-qualified) with its target replaced by `to`; refuses a text where the
 * target is not found exactly once.
 */
export function retarget(definition: string, from: string, to: string): string {
  const at = ` REFERENCES ${from}(`;
  const parts = definition.split(at);
  if (parts.length !== 2) throw new Error(`cannot find the target ${from} in foreign key definition: ${definition}`);
  return `${parts[0]} REFERENCES ${to}(${parts[1]}`;
}

/** The definition without pg_get_constraintdef's NOT VALID (we add it, and validate what was validated). */
export function withoutNotValid(definition: string): string {
  return definition.replace(/ NOT VALID$/, '');
}

/** The referencing table, locked before the table (as its writers lock it before their check reads the table). */
export function lockReferencingSql(fks: IncomingForeignKey[]): string[] {
  const tables = [...new Set(fks.map((f) => qname(f.schema, f.table)))];
  return tables.length ? [`LOCK TABLE ${tables.join(', ')} IN ACCESS EXCLUSIVE MODE`] : [];
}

/** Drops the foreign key and adds it again under its name, NOT VALID, as `definition` (validated after the lock is released). */
export function repointSql(fk: IncomingForeignKey, definition: string): string[] {
  return [
    dropConstraintSql(fk.schema, fk.table, fk.name),
    `ALTER TABLE ${qname(fk.schema, fk.table)} ADD CONSTRAINT ${ident(fk.name)} ${definition} NOT VALID`,
  ];
}

/** The statement a refusal names to remove a foreign key. */
export function dropConstraintSql(schema: string, table: string, name: string): string {
  return `ALTER TABLE ${qname(schema, table)} DROP CONSTRAINT ${ident(name)}`;
}

/** VALIDATE takes SHARE UPDATE EXCLUSIVE on the referencing table (its writers go on), ROW SHARE on the referenced one. */
export function validateSql(fk: IncomingForeignKey): string[] {
  const on = qname(fk.schema, fk.table);
  return [`LOCK TABLE ${on} IN SHARE UPDATE EXCLUSIVE MODE`, `ALTER TABLE ${on} VALIDATE CONSTRAINT ${ident(fk.name)}`];
}

/** `foreign key payment_rental_id_fkey on public.payment`. */
export function fkName(fk: IncomingForeignKey): string {
  return `foreign key ${fk.name} on ${fk.schema}.${fk.table}`;
}

/** The plan's line: how the foreign keys are kept, and what it costs per write. */
export function keyTableNote(tp: TablePlan, kt: KeyTablePlan): string {
  const t = `${tp.schema}.${tp.table}`;
  const cols = kt.columns.map((c) => c.name).join(', ');
  return (
    `${kt.foreignKeys.map((f) => `${fkName(f)} (${f.definition})`).join('; ')} ${kt.foreignKeys.length === 1 ? 'references' : 'reference'} ${t}: ` +
    `a partitioned table's keys include ${tp.partitionKey}, so ${tp.schema}.${kt.table} (${cols}, primary key) holds ${t}'s keys, kept in the same transaction ` +
    `by triggers on ${tp.names.partitioned} from prepare on, and at cutover each foreign key is re-created under its name pointing at it (NOT VALID, with its ` +
    `ON DELETE / ON UPDATE actions and deferrability; each referencing table is locked ACCESS EXCLUSIVE for the cutover's milliseconds), then validated ` +
    `(SHARE UPDATE EXCLUSIVE: writers go on). A duplicate ${cols} fails as before (unique_violation on ${kt.table}_pkey), in any partition. ` +
    `Cost per write from prepare on: each INSERT into ${t} adds one row to ${kt.table} (a heap tuple and a primary key index entry) and each DELETE ` +
    `removes one, both by one statement per statement (its rows read from a transition table); an UPDATE of ${cols} updates its key row; other UPDATEs ` +
    `(a row moved to another partition too) cost nothing. Rows written straight into a partition (not through ${tp.table}), and partitions detached ` +
    `or dropped, bypass it. The rollback re-creates the original foreign keys on the plain table and drops ${kt.table}`
  );
}

/** The dry run's statements per stage (src/plansql.ts renderPlanSql) with the key table's: made at prepare, the foreign keys re-pointed at cutover. */
export function withKeyTableSql(tp: TablePlan, stages: Record<string, string[]>): Record<string, string[]> {
  const kt = tp.keyTable;
  if (!kt) return stages;
  const to = qname(tp.schema, kt.table);
  return {
    ...stages,
    prepare: [...(stages.prepare ?? []), ...keyTableSql(tp, kt)],
    cutover: [
      ...lockReferencingSql(kt.foreignKeys),
      ...(stages.cutover ?? []),
      ...kt.foreignKeys.flatMap((fk) => repointSql(fk, retarget(fk.definition, fk.target, to))),
      ...kt.foreignKeys.filter((fk) => fk.validated).flatMap(validateSql),
    ],
  };
}
