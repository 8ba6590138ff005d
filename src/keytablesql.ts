// The key table that carries the foreign keys of other tables referencing a table through the
// switchover (README "Foreign keys into the table: the key table"): `<table>_keys`, made at
// prepare, kept equal to the table's keys by triggers on the table (filled in batches), which the
// cutover moves onto the partitioned table as it re-points each referencing foreign key at the key
// table; the rollback points them back. Pure rendering; activities/keytable.ts reads the catalog
// and runs it.
import { ident, list, qname } from './sql';
import { fitName } from './partitions';
import type { IncomingForeignKey, KeyTablePlan, TablePlan } from './types';

/** Our triggers (on the table until cutover, then on the partitioned one): inserted and deleted rows by statement (transition tables), a key update by row. */
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
    // A partition maintenance move (activities/maintain-partitions.ts moveRows): the rows are
    // deleted from a partition (no statement trigger of the table) and inserted again through it.
    `  IF current_setting('partition_switchover.keys', true) = 'moving' THEN`,
    `    RETURN NEW;`,
    `  END IF;`,
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
 * Prepare's statements (in the transaction that makes `<table>_partitioned`): the key table, owned
 * like the table (a foreign key check reads it as its owner), and its trigger function.
 */
export function keyTableSql(tp: TablePlan, kt: KeyTablePlan): string[] {
  const cols = kt.columns.map((c) => c.name);
  return [
    `CREATE TABLE ${qname(tp.schema, kt.table)} (${kt.columns.map((c) => `${ident(c.name)} ${c.type} NOT NULL`).join(', ')}, PRIMARY KEY (${list(cols)}))`,
    ...(tp.owner ? [`ALTER TABLE ${qname(tp.schema, kt.table)} OWNER TO ${ident(tp.owner)}`] : []),
    keyFunctionSql(tp, kt),
    `REVOKE ALL ON FUNCTION ${qname(tp.schema, kt.fn)}() FROM PUBLIC`,
  ];
}

/**
 * The triggers that keep the key table equal to `table`'s keys, enabled ALWAYS (a writer with
 * session_replication_role = replica keeps it too): on the table from prepare, on the partitioned
 * table from cutover (the row trigger is cloned, enabled ALWAYS, onto every partition, also those
 * made later).
 */
export function keyTriggersSql(tp: TablePlan, kt: KeyTablePlan, table: string): string[] {
  const on = qname(tp.schema, table);
  const fn = qname(tp.schema, kt.fn);
  const cols = kt.columns.map((c) => c.name);
  return [
    `CREATE OR REPLACE TRIGGER ${ident(KEY_TRIGGERS.insert)} AFTER INSERT ON ${on} REFERENCING NEW TABLE AS ps_new FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER ${ident(KEY_TRIGGERS.delete)} AFTER DELETE ON ${on} REFERENCING OLD TABLE AS ps_old FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
    `CREATE OR REPLACE TRIGGER ${ident(KEY_TRIGGERS.update)} BEFORE UPDATE OF ${list(cols)} ON ${on} FOR EACH ROW ` +
      `WHEN ((${list(cols, 'OLD.')}) IS DISTINCT FROM (${list(cols, 'NEW.')})) EXECUTE FUNCTION ${fn}()`,
    ...Object.values(KEY_TRIGGERS).map((t) => `ALTER TABLE ${on} ENABLE ALWAYS TRIGGER ${ident(t)}`),
  ];
}

export function dropKeyTriggersSql(tp: TablePlan, table: string): string[] {
  return Object.values(KEY_TRIGGERS).map((t) => `DROP TRIGGER IF EXISTS ${ident(t)} ON ${qname(tp.schema, table)}`);
}

/**
 * One batch of the key table's fill from the table, in key order after the cursor ($1.. as text,
 * when `withCursor`; then $n the batch size). The batch's keys are read in the statement's
 * snapshot, and the cursor moves to the last of them; only then are the rows locked FOR KEY
 * SHARE, by those keys, so a delete or key update of one waits for the batch and its trigger then
 * applies on top (a row deleted or re-keyed before is skipped; its new key is the trigger's). A
 * key its trigger inserted already is kept. Locking in the ordered read itself would let a row
 * re-keyed meanwhile come back with its new key, out of order, and the cursor jump past every key
 * in between. Returns the keys read (n) and the last key (json array of text).
 */
export function keyFillSql(tp: TablePlan, kt: KeyTablePlan, withCursor: boolean): string {
  const cols = kt.columns.map((c) => c.name);
  const cursor = withCursor ? ` WHERE (${list(cols)}) > (${kt.columns.map((c, i) => `$${i + 1}::${c.type}`).join(', ')})` : '';
  return [
    `WITH keys AS (`,
    `  SELECT ${list(cols)} FROM ${qname(tp.schema, tp.table)}${cursor} ORDER BY ${list(cols)} LIMIT $${withCursor ? cols.length + 1 : 1}`,
    `), batch AS (`,
    `  SELECT ${list(cols)} FROM ${qname(tp.schema, tp.table)} WHERE (${list(cols)}) IN (SELECT ${list(cols)} FROM keys) FOR KEY SHARE`,
    `), ins AS (`,
    `  INSERT INTO ${qname(tp.schema, kt.table)} (${list(cols)}) SELECT ${list(cols)} FROM batch ON CONFLICT DO NOTHING`,
    `)`,
    `SELECT (SELECT count(*) FROM keys)::int AS n,`,
    `  (SELECT json_build_array(${cols.map((c) => `${ident(c)}::text`).join(', ')}) FROM keys ORDER BY ${list(cols)} DESC LIMIT 1) AS last`,
  ].join('\n');
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
    `a partitioned table's keys include ${tp.partitionKey}, so ${tp.schema}.${kt.table} (${cols}, primary key) holds ${t}'s keys, kept in each writer's transaction ` +
    `by triggers on ${t} from prepare on (the keys already there filled in batches of 5,000 read FOR KEY SHARE: a delete or key update of one waits for its batch), ` +
    `moved onto the partitioned table at cutover, where each foreign key is re-created under its name pointing at it (NOT VALID, with its ` +
    `ON DELETE / ON UPDATE actions and deferrability; each referencing table is locked ACCESS EXCLUSIVE for the cutover's milliseconds), then validated ` +
    `(SHARE UPDATE EXCLUSIVE: writers go on). A duplicate ${cols} fails as before (unique_violation on ${kt.table}_pkey), in any partition. ` +
    `Cost per write from prepare on (measured: npm run bench:keytable): each INSERT into ${t} adds one row to ${kt.table} (a heap tuple and a primary key index entry) and each DELETE ` +
    `removes one, both by one statement per statement (its rows read from a transition table); an UPDATE of ${cols} updates its key row; other UPDATEs ` +
    `(a row moved to another partition too) cost nothing. Rows written straight into a partition (not through ${tp.table}), and partitions detached ` +
    `or dropped, bypass it. The rollback re-creates the original foreign keys on the plain table and drops ${kt.table}`
  );
}

/** Cutover, after the renames: the key triggers move from `<table>_legacy` to the partitioned table, and the foreign keys on `<table>_legacy` to the key table. */
export function repointToKeysSql(tp: TablePlan, kt: KeyTablePlan, fks: IncomingForeignKey[]): string[] {
  const to = qname(tp.schema, kt.table);
  return [
    ...dropKeyTriggersSql(tp, tp.names.legacy),
    ...keyTriggersSql(tp, kt, tp.table),
    ...fks.flatMap((fk) => repointSql(fk, retarget(fk.definition, fk.target, to))),
  ];
}

/** The dry run's statements per stage (src/plansql.ts renderPlanSql) with the key table's: made and filled at prepare, its triggers and the foreign keys moved at cutover. */
export function withKeyTableSql(tp: TablePlan, stages: Record<string, string[]>): Record<string, string[]> {
  const kt = tp.keyTable;
  if (!kt) return stages;
  return {
    ...stages,
    prepare: [...(stages.prepare ?? []), ...keyTableSql(tp, kt), ...keyTriggersSql(tp, kt, tp.table), keyFillSql(tp, kt, true)],
    cutover: [
      ...lockReferencingSql(kt.foreignKeys),
      ...(stages.cutover ?? []),
      ...repointToKeysSql(tp, kt, kt.foreignKeys),
      ...kt.foreignKeys.filter((fk) => fk.validated).flatMap(validateSql),
    ],
  };
}
