// The attach strategy's SQL: pure rendering from a TablePlan with `attach` set. The table itself
// becomes the partition of everything before the cutoff: two unique indexes built concurrently,
// a CHECK that proves the partition bound, then one short cutover transaction (rename, new
// parent, ATTACH without a scan). Run by activities/attach.ts; identifiers through src/sql.ts.
import { ident, list, literal, qname } from './sql';
import { boundLiteral, createPartitionedTableSql, lockSql, partitionNameFor, partitionSql, primaryKeySql, sequenceOwnershipSql } from './sqlgen';
import { carryCutoverSql, carryRollbackSql, triggerStateSql } from './carrysql';
import type { AttachPlan, TablePlan } from './types';

export function attachOf(tp: TablePlan): AttachPlan {
  if (!tp.attach) throw new Error(`the plan of ${tp.schema}.${tp.table} is not an attach plan`);
  return tp.attach;
}

const table = (tp: TablePlan) => qname(tp.schema, tp.table);

/** The two unique indexes, CONCURRENTLY (outside a transaction): (primary key..., key), then the primary key. */
export function attachIndexSql(tp: TablePlan): { name: string; sql: string }[] {
  const a = attachOf(tp);
  const out: { name: string; sql: string }[] = [];
  if (a.keyIndex) out.push({ name: a.keyIndex, sql: `CREATE UNIQUE INDEX CONCURRENTLY ${ident(a.keyIndex)} ON ${table(tp)} (${list(tp.partitionedKey)})` });
  if (a.pkIndex) out.push({ name: a.pkIndex, sql: `CREATE UNIQUE INDEX CONCURRENTLY ${ident(a.pkIndex)} ON ${table(tp)} (${list(tp.primaryKey)})` });
  return out;
}

/** The bound as a CHECK expression, the same one the partition constraint of FROM (MINVALUE) TO (cutoff) is. */
export function boundExpr(tp: TablePlan): string {
  const k = ident(tp.partitionKey);
  return `${k} IS NOT NULL AND ${k} < ${boundLiteral(attachOf(tp).cutoff, tp.keyType)}`;
}

export function addCheckSql(tp: TablePlan): string {
  return `ALTER TABLE ${table(tp)} ADD CONSTRAINT ${ident(attachOf(tp).check)} CHECK (${boundExpr(tp)}) NOT VALID`;
}

export function validateCheckSql(tp: TablePlan): string {
  return `ALTER TABLE ${table(tp)} VALIDATE CONSTRAINT ${ident(attachOf(tp).check)}`;
}

/**
 * The table's NOT VALID constraints that preflight found no row to violate, validated on the table
 * itself before cutover: the parent has them valid, and ATTACH PARTITION refuses a partition whose
 * matching CHECK is not (42P17). A no-op for one already valid.
 */
export function validateNotValidSql(tp: TablePlan): string[] {
  return (tp.notValid ?? []).map((c) => `ALTER TABLE ${table(tp)} VALIDATE CONSTRAINT ${ident(c.name)}`);
}

/** Rows, rows outside the history partition's bound, and the key's range: one statement, one snapshot. */
export function attachVerifySql(tp: TablePlan): string {
  const k = ident(tp.partitionKey);
  return (
    `SELECT count(*)::bigint AS rows, count(*) FILTER (WHERE NOT (${boundExpr(tp)}) OR ${k} IS NULL)::bigint AS outside, ` +
    `min(${k})::text AS min, max(${k})::text AS max FROM ${table(tp)}`
  );
}

/** A unique constraint's statement for the parent under its temporary name, as preflight rendered it. */
function parentIndexSql(tp: TablePlan, i: TablePlan['indexes'][number], on: string): string {
  if (!i.index) return i.createSql;
  return `CREATE ${i.index.unique ? 'UNIQUE ' : ''}INDEX ${ident(i.tempName)} ON ${on} ${i.index.using}`;
}

/**
 * The parent, made before cutover under the temporary name (`<table>_partitioned`), empty, with
 * the partitions from the cutoff on: its primary key and indexes under their temporary names,
 * foreign keys, owner, grants, comment, policies. Nothing here locks the table beyond LIKE's
 * ACCESS SHARE, and the cutover's lock no longer pays for it. `grants`: preflight's grantSql.
 */
export function attachParentSql(tp: TablePlan, grants: string[]): string[] {
  const a = attachOf(tp);
  const s = tp.schema;
  const parentTemp = qname(s, tp.names.partitioned);
  const owner = (name: string) => (tp.owner ? [`ALTER TABLE ${qname(s, name)} OWNER TO ${ident(tp.owner)}`] : []);
  return [
    createPartitionedTableSql(tp),
    // LIKE ... INCLUDING CONSTRAINTS copies our bound when it is there already: it belongs to the history partition only.
    `ALTER TABLE ${parentTemp} DROP CONSTRAINT IF EXISTS ${ident(a.check)}`,
    primaryKeySql(tp),
    ...tp.indexes.filter((i) => !i.isPrimary).map((i) => parentIndexSql(tp, i, parentTemp)),
    ...tp.foreignKeys.map((f) => `ALTER TABLE ${parentTemp} ADD CONSTRAINT ${ident(f.name)} ${f.definition}`),
    ...a.partitions.flatMap((p) => [partitionSql(tp, tp.names.partitioned, p), ...owner(partitionNameFor(tp, p))]),
    ...owner(tp.names.partitioned),
    ...grants,
    ...(tp.comment !== null ? [`COMMENT ON TABLE ${parentTemp} IS ${literal(tp.comment)}`] : []),
    ...(tp.policies ?? []),
  ];
}

/**
 * The cutover transaction's statements once the table (and its views) are locked: the table's
 * primary key becomes (primary key..., key) from the prebuilt index, its index names step aside
 * for the parent's, the names swap, the table is attached as FROM (MINVALUE) TO (cutoff) (the
 * validated CHECK proves the bound: no scan; its indexes and foreign keys are attached to the
 * parent's, not built), and what the table carries (sequences, identity, views, triggers, RLS)
 * goes to the parent.
 */
export function attachCutoverSql(tp: TablePlan): string[] {
  const a = attachOf(tp);
  const s = tp.schema;
  const parentTemp = qname(s, tp.names.partitioned);
  const hist = qname(s, a.history);
  const secondary = tp.indexes.filter((i) => !i.isPrimary);
  return [
    ...(a.keyIndex
      ? [
          `ALTER TABLE ${table(tp)} DROP CONSTRAINT ${ident(tp.names.pkConstraint)}`,
          `ALTER TABLE ${table(tp)} ADD CONSTRAINT ${ident(a.historyPk)} PRIMARY KEY USING INDEX ${ident(a.keyIndex)}`,
        ]
      : [`ALTER INDEX ${qname(s, tp.names.pkConstraint)} RENAME TO ${ident(a.historyPk)}`]),
    ...a.historyIndexes.map((h) => `ALTER INDEX ${qname(s, h.name)} RENAME TO ${ident(h.historyName)}`),
    `ALTER INDEX ${qname(s, tp.names.pkTempConstraint)} RENAME TO ${ident(tp.names.pkConstraint)}`,
    ...secondary.map((i) => `ALTER INDEX ${qname(s, i.tempName)} RENAME TO ${ident(i.name)}`),
    `ALTER TABLE ${table(tp)} RENAME TO ${ident(a.history)}`,
    `ALTER TABLE ${parentTemp} RENAME TO ${ident(tp.table)}`,
    `ALTER TABLE ${table(tp)} ATTACH PARTITION ${hist} FOR VALUES FROM (MINVALUE) TO (${boundLiteral(a.cutoff, tp.keyType)})`,
    // The partition constraint holds the bound from here on.
    `ALTER TABLE ${hist} DROP CONSTRAINT ${ident(a.check)}`,
    ...sequenceOwnershipSql(tp, tp.table),
    ...carryCutoverSql({ ...tp, triggers: [] }),
    // The application's triggers: made on the parent (row triggers clone onto every partition), off the history partition first.
    ...(tp.triggers ?? []).flatMap((t) => [
      `DROP TRIGGER IF EXISTS ${ident(t.name)} ON ${hist}`,
      t.createSql,
      ...(t.enabled === 'O' ? [] : [triggerStateSql(s, tp.table, t.name, t.enabled)]),
    ]),
  ];
}

/** Undo before cutover: the CHECK (the two indexes are dropped by the caller, each only if ours). */
export function undoBeforeCutoverSql(tp: TablePlan): string[] {
  return [`ALTER TABLE ${table(tp)} DROP CONSTRAINT IF EXISTS ${ident(attachOf(tp).check)}`];
}

/**
 * Undo after cutover, in the rollback's transaction once the parent is locked: the history
 * partition detached, the rows written since cutover (in the new partitions) brought into it,
 * the names swapped back, views, sequences and identity home. `drop` is where the caller drops
 * the parent (only if ours), `after` what follows it: the old primary key from the kept unique
 * index, the index names, the application's triggers.
 */
export function undoAfterCutoverSql(tp: TablePlan): { before: string[]; after: string[] } {
  const a = attachOf(tp);
  const s = tp.schema;
  const hist = qname(s, a.history);
  const cols = list(tp.insertColumns);
  const carry = carryRollbackSql({ ...tp, triggers: [] });
  return {
    before: [
      `ALTER TABLE ${table(tp)} DETACH PARTITION ${hist}`,
      // Detach drops the triggers cloned from the parent; the application's own come back below.
      ...(tp.triggers ?? []).map((t) => `DROP TRIGGER IF EXISTS ${ident(t.name)} ON ${hist}`),
      `INSERT INTO ${hist} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ${table(tp)}`,
      `ALTER TABLE ${table(tp)} RENAME TO ${ident(tp.names.partitioned)}`,
      `ALTER TABLE ${hist} RENAME TO ${ident(tp.table)}`,
      ...sequenceOwnershipSql(tp, tp.table),
      ...carry.beforeDrop,
    ],
    after: [
      ...carry.afterDrop,
      ...(a.keyIndex
        ? [
            `ALTER TABLE ${table(tp)} DROP CONSTRAINT ${ident(a.historyPk)}`,
            `ALTER TABLE ${table(tp)} ADD CONSTRAINT ${ident(tp.names.pkConstraint)} PRIMARY KEY USING INDEX ${ident(a.pkIndex!)}`,
          ]
        : [`ALTER INDEX ${qname(s, a.historyPk)} RENAME TO ${ident(tp.names.pkConstraint)}`]),
      ...a.historyIndexes.map((h) => `ALTER INDEX ${qname(s, h.historyName)} RENAME TO ${ident(h.name)}`),
      ...(tp.triggers ?? []).flatMap((t) => [t.createSql, ...(t.enabled === 'O' ? [] : [triggerStateSql(s, tp.table, t.name, t.enabled)])]),
    ],
  };
}

/** An index left invalid by a crashed CONCURRENTLY build, dropped before it is built again (outside a transaction). */
export function dropIndexConcurrentlySql(schema: string, name: string): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${qname(schema, name)}`;
}

/** An index of ours (the caller checked its recorded oid), dropped by the rollback before cutover. */
export function dropIndexSql(schema: string, name: string): string {
  return `DROP INDEX ${qname(schema, name)}`;
}

/** A table the parent's foreign keys reference, locked by the rollback before the rows move (dropping the parent drops its triggers there). */
export function lockReferencedSql(schema: string, table: string): string {
  return `LOCK TABLE ${qname(schema, table)} IN ACCESS EXCLUSIVE MODE`;
}

/** The parent under its temporary name, for the dry run's rollback after cutover (the rollback drops it only if ours). */
export function dropParentSql(tp: TablePlan): string {
  return `DROP TABLE ${qname(tp.schema, tp.names.partitioned)}`;
}

/** The statements of the attach strategy per stage, for the dry-run report (`grants`: preflight's grantSql). */
export function renderAttachSql(tp: TablePlan, grants: string[]): Record<string, string[]> {
  const undo = undoAfterCutoverSql(tp);
  const a = attachOf(tp);
  return {
    indexes: attachIndexSql(tp).map((i) => i.sql),
    parent: attachParentSql(tp, grants),
    check: [...validateNotValidSql(tp), addCheckSql(tp), validateCheckSql(tp)],
    verify: [attachVerifySql(tp)],
    cutover: [...lockSql(tp, [tp.table, tp.names.partitioned]), ...attachCutoverSql(tp)],
    rollbackBeforeCutover: [dropParentSql(tp), ...undoBeforeCutoverSql(tp), ...[a.keyIndex, a.pkIndex].flatMap((n) => (n ? [dropIndexSql(tp.schema, n)] : []))],
    rollbackAfterCutover: [...lockSql(tp, [tp.table]), ...undo.before, dropParentSql(tp), ...undo.after],
    cleanup: [],
  };
}
