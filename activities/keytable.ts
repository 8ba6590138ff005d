// The foreign keys of other tables that reference the table, carried through the switchover by a
// key table (copy strategy; README "Foreign keys into the table: the key table"): preflight's
// reading and refusals (planKeyTable), the key table at prepare (createKeyTable) with its triggers
// on the table and its fill (fillKeyTable), under the cutover's lock the check that nothing changed
// and the re-pointing (keyTableChanges, repointToKeys), their validation once the lock is released
// (validateKeyForeignKeys), and the rollback's re-pointing back and drop (undoKeyTable,
// dropKeyTable). Each step reads the catalog first, so a retry ends in the same state.
import type pg from 'pg';
import { sqlFile } from '../src/db';
import { fail } from '../src/errors';
import { ident, qname } from '../src/sql';
import {
  dropConstraintSql,
  dropKeyFunctionSql,
  dropKeyTriggersSql,
  keyFillSql,
  keyTriggersSql,
  repointToKeysSql,
  fkName,
  keyTableNames,
  keyTableNote,
  keyTableSql,
  lockReferencingSql,
  repointSql,
  validateSql,
  withoutNotValid,
} from '../src/keytablesql';
import type { IncomingForeignKey, TablePlan } from '../src/types';
import { dropIfOurs, recordCreated, release, ownership } from './bookkeeping';
import { lockedTx, type LockedTx } from './locks';
import { throwIfCancelled } from './context';
import type { UndoContext } from './undo';

type Row = Record<string, any>;

/** The incoming foreign keys of the table named `schema.table` now, read with search_path = pg_catalog (local to a transaction when `local`). */
async function incoming(c: pg.ClientBase, schema: string, table: string, local: boolean): Promise<Row[]> {
  const oid = (await c.query(sqlFile('catalog/relation_oid'), [schema, table])).rows[0]?.oid;
  if (oid === undefined) return [];
  const path = (await c.query(sqlFile('session/search_path'))).rows[0].p as string;
  const set = sqlFile(local ? 'session/set_search_path_local' : 'session/set_search_path');
  await c.query(set, ['pg_catalog']);
  try {
    return (await c.query(sqlFile('catalog/incoming_foreign_keys'), [oid])).rows;
  } finally {
    await c.query(set, [path]);
  }
}

const asPlan = (r: Row): IncomingForeignKey => ({
  name: r.name,
  schema: r.schema,
  table: r.table,
  definition: withoutNotValid(r.definition),
  target: r.target,
  validated: r.validated,
});

/**
 * Preflight (copy strategy): the foreign keys referencing the table go into the plan with the key
 * table that will carry them, and the plan's line on its cost. Refused, each naming what to run:
 * one that references other columns than the primary key, one on a table switched over in the
 * same run, one on a partitioned table (no NOT VALID foreign key there), one on a table whose owner the worker's role cannot act as, and the
 * key table's or its function's name taken.
 */
export async function planKeyTable(db: pg.ClientBase, tp: TablePlan, switched: string[] = []): Promise<string[]> {
  const rows = await incoming(db, tp.schema, tp.table, false);
  if (!rows.length) return [];
  const t = `${tp.schema}.${tp.table}`;
  const problems: string[] = [];
  const pk = [...tp.primaryKey].sort().join(', ');
  for (const r of rows) {
    if ([...r.ref_columns].sort().join(', ') !== pk) {
      problems.push(
        `foreign key ${r.name} on ${r.schema}.${r.table} references ${t} (${r.ref_columns.join(', ')}), not its primary key (${tp.primaryKey.join(', ')}), ` +
          `which is the only key the switchover carries for other tables (through ${keyTableNames(tp.table).table}). Drop it (${dropConstraintSql(r.schema, r.table, r.name)}) ` +
          `before the switchover and re-create it afterwards, or make it reference the primary key, then start again`,
      );
    }
    if (r.schema === tp.schema && switched.includes(r.table)) {
      problems.push(
        `foreign key ${r.name} on ${r.schema}.${r.table} references ${t}, and both are switched over in this run: ${r.schema}.${r.table}'s partitioned copy ` +
          `would take the foreign key onto ${t} before the cutover of ${t} could point it at its key table. Switch over ${t} first, then ${r.schema}.${r.table} in another run`,
      );
    }
    if (r.relkind === 'p') {
      problems.push(
        `foreign key ${r.name} on ${r.schema}.${r.table} references ${t}: ${r.schema}.${r.table} is partitioned, and PostgreSQL cannot add a NOT VALID foreign key ` +
          `to a partitioned table, so the cutover could re-create it only by checking every row of ${r.schema}.${r.table} under its lock. Drop it ` +
          `(${dropConstraintSql(r.schema, r.table, r.name)}) before the switchover and re-create it afterwards, then start again`,
      );
    }
    if (!r.acts_as_owner) {
      problems.push(
        `foreign key ${r.name} on ${r.schema}.${r.table} references ${t}: the switchover re-creates it at cutover, which only the owner of ${r.schema}.${r.table} ` +
          `(role ${r.owner}) may do, and the worker's role is not a member of it; run GRANT ${ident(r.owner)} TO ${ident(r.me)}, then start again`,
      );
    }
  }
  const names = keyTableNames(tp.table);
  const oid = (await db.query(sqlFile('catalog/relation_oid'), [tp.schema, tp.table])).rows[0].oid;
  for (const r of (await db.query(sqlFile('catalog/name_conflicts'), [tp.schema, [names.table], [names.fn], oid, []])).rows) {
    problems.push(
      r.what === 'relation'
        ? `${tp.schema}.${r.name} already exists; the switchover of ${t} would create it as the key table of the foreign keys that reference ${t}. ` +
            `Rename or drop it (if it is left from an earlier switchover, run the rollback workflow for that one), then start again`
        : `function ${tp.schema}.${r.name} already exists; the switchover of ${t} would replace it with the key table's trigger function. Rename or drop it, then start again`,
    );
  }
  if (problems.length) return problems;
  const columns = tp.primaryKey.map((name) => ({ name, type: tp.columns.find((c) => c.name === name)!.type }));
  tp.keyTable = { ...names, columns, foreignKeys: rows.map(asPlan) };
  tp.warnings.push(keyTableNote(tp, tp.keyTable));
  return [];
}

/** Prepare, in the transaction that makes `<table>_partitioned`: the key table (recorded as ours) and its trigger function. */
export async function createKeyTable(c: pg.ClientBase, tp: TablePlan): Promise<void> {
  if (!tp.keyTable) return;
  for (const s of keyTableSql(tp, tp.keyTable)) await c.query(s);
  await recordCreated(c, tp, tp.keyTable.table, 'keys');
}

/** Keys per fill batch: a delete or key update of one of them waits for the batch (milliseconds). */
const FILL_BATCH = 5000;

/**
 * Prepare, after the partitions: the key table's triggers on the table (CREATE TRIGGER takes
 * SHARE ROW EXCLUSIVE on it: under the lock budget), so every write from then on keeps the key
 * table in its own transaction, then the keys already there, in batches (keyFillSql: read FOR KEY
 * SHARE, each batch under the lock budget, so a writer holding a key's row makes the batch give
 * way and retry, never the writer). A retry starts the fill again (what is there is kept). Kept
 * on the table, not the partitioned copy: the copy's batches may write a row's old version there
 * for a while (the re-check repairs it), and its key would then collide with the writer's.
 */
export async function fillKeyTable(pool: pg.Pool, tp: TablePlan): Promise<number> {
  const kt = tp.keyTable;
  if (!kt) return 0;
  await lockedTx(pool, { what: `key table triggers on ${tp.schema}.${tp.table}` }, async (tx) => {
    for (const s of keyTriggersSql(tp, kt, tp.table)) await tx.q(s);
  });
  let rows = 0;
  for (let last: string[] | null = null; ;) {
    throwIfCancelled();
    const params: unknown[] = [...(last ?? []), FILL_BATCH];
    const { value } = await lockedTx(pool, { what: `key table fill of ${tp.schema}.${tp.table}` }, (tx) => tx.long(keyFillSql(tp, kt, last !== null), params));
    const r = value.rows[0];
    // Only an empty batch ends it: a row deleted while the batch waited for its lock is skipped, so a short batch is not the last.
    if (r.n === 0) return rows;
    rows += r.n;
    last = r.last;
  }
}

/** The cutover's first locks: each referencing table of the plan that still exists, as its writers lock it before their check reads the table. */
export async function lockReferencing(tx: LockedTx, tp: TablePlan): Promise<void> {
  const there: IncomingForeignKey[] = [];
  for (const fk of tp.keyTable?.foreignKeys ?? []) {
    if ((await tx.client.query(sqlFile('catalog/relation_oid'), [fk.schema, fk.table])).rows.length) there.push(fk);
  }
  for (const s of lockReferencingSql(there)) await tx.q(s);
}

/**
 * Under the cutover's lock, before the renames: the foreign keys referencing the table now against
 * the plan's. One added or changed since preflight would keep pointing at `<table>_legacy`; a
 * refusal each (one dropped since is not re-created: nothing to carry).
 */
export async function keyTableChanges(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const planned = new Map((tp.keyTable?.foreignKeys ?? []).map((f) => [`${f.schema}.${f.table}.${f.name}`, f]));
  const changes: string[] = [];
  for (const r of (await incoming(c, tp.schema, tp.table, true)).map(asPlan)) {
    const was = planned.get(`${r.schema}.${r.table}.${r.name}`);
    if (!was) changes.push(`${fkName(r)} was made referencing ${tp.schema}.${tp.table} (${r.definition})`);
    else if (was.definition !== r.definition) changes.push(`${fkName(r)} changed from ${was.definition} to ${r.definition}`);
  }
  return changes;
}

/** The FKs of the plan that reference `relation` now, with whether each is validated. */
async function pointingAt(c: pg.ClientBase, tp: TablePlan, relation: string): Promise<{ fk: IncomingForeignKey; validated: boolean }[]> {
  const now = (await c.query(sqlFile('catalog/foreign_keys_to'), [qname(tp.schema, relation)])).rows;
  return (tp.keyTable?.foreignKeys ?? []).flatMap((fk) => {
    const r = now.find((x) => x.schema === fk.schema && x.table === fk.table && x.name === fk.name);
    return r ? [{ fk, validated: r.validated as boolean }] : [];
  });
}

/**
 * Cutover, after the renames: the key table's triggers move from `<table>_legacy` (which the
 * mirror writes from now on) to the partitioned table, and each foreign key on `<table>_legacy` is
 * dropped and made again under its name on the key table, NOT VALID.
 */
export async function repointToKeys(tx: LockedTx, tp: TablePlan): Promise<void> {
  const kt = tp.keyTable;
  if (!kt) return;
  const fks = (await pointingAt(tx.client, tp, tp.names.legacy)).map((x) => x.fk);
  for (const s of repointToKeysSql(tp, kt, fks)) await tx.q(s);
}

/**
 * VALIDATE of each re-pointed foreign key that was validated before (on `relation`: the key table
 * after cutover, the plain table after a rollback), each in its own transaction whose lock waits
 * are under the budget; returns a message per foreign key that rows violate (PostgreSQL's DETAIL kept).
 */
async function validateOn(pool: pg.Pool, tp: TablePlan, relation: string, lockTimeoutMs: number): Promise<{ fk: IncomingForeignKey; message: string }[]> {
  const failed: { fk: IncomingForeignKey; message: string }[] = [];
  const todo = (await pool.query(sqlFile('catalog/foreign_keys_to'), [qname(tp.schema, relation)])).rows;
  for (const fk of tp.keyTable?.foreignKeys ?? []) {
    if (!fk.validated || !todo.some((r) => r.schema === fk.schema && r.table === fk.table && r.name === fk.name && !r.validated)) continue;
    try {
      await lockedTx(pool, { what: `validation of ${fkName(fk)}`, lockTimeoutMs }, async (tx) => {
        const [lock, validate] = validateSql(fk);
        await tx.q(lock);
        await tx.long(validate);
      });
    } catch (err) {
      const e = err as { code?: string; message: string; detail?: string };
      if (e.code !== '23503') throw err;
      failed.push({
        fk,
        message: `${fkName(fk)} could not be validated against ${tp.schema}.${relation}: ${e.message}${e.detail ? ` (DETAIL: ${e.detail})` : ''}`,
      });
    }
  }
  return failed;
}

/** After the cutover's lock is released (and on a retry that finds it done): the re-pointed foreign keys validated; rows that violate one fail the switchover, which rolls back. */
export async function validateKeyForeignKeys(pool: pg.Pool, tp: TablePlan, lockTimeoutMs: number): Promise<void> {
  if (!tp.keyTable) return;
  const failed = (await validateOn(pool, tp, tp.keyTable.table, lockTimeoutMs)).map((f) => f.message);
  if (!failed.length) return;
  throw fail(
    'StateConflict',
    `after the cutover of ${tp.schema}.${tp.table}, ${failed.join('; ')}. Rows of the referencing table name keys ${tp.keyTable.table} does not hold ` +
      `(written straight into a partition, or a partition dropped?). The switchover rolls back, which re-creates the original foreign keys on the plain table`,
    { table: tp.table, stage: 'cutover', failed },
  );
}

/**
 * Rollback, in its locked transaction after the names are back: each foreign key on the key table
 * made again as it was (on the plain table), NOT VALID (validated after the lock, dropKeyTable). A
 * foreign key on the key table that the plan does not know (made since cutover) is refused, naming
 * what to run: the key table could not be dropped.
 */
export async function undoKeyTable(u: UndoContext): Promise<void> {
  const { tx, tp } = u;
  const kt = tp.keyTable;
  if (!kt) return;
  const now = (await tx.client.query(sqlFile('catalog/foreign_keys_to'), [qname(tp.schema, kt.table)])).rows;
  const known = await pointingAt(tx.client, tp, kt.table);
  const strangers = now.filter((r) => !known.some(({ fk }) => fk.schema === r.schema && fk.table === r.table && fk.name === r.name));
  if (strangers.length) {
    throw fail(
      'StateConflict',
      `rollback of ${tp.schema}.${tp.table} refused: since cutover, ${strangers.map((r) => `foreign key ${r.name} on ${r.schema}.${r.table}`).join(', ')} ` +
        `references ${tp.schema}.${kt.table}, which the rollback drops. Nothing was changed. Run ` +
        `${strangers.map((r) => `${dropConstraintSql(r.schema, r.table, r.name)};`).join(' ')} then the rollback again, and make it again on ${tp.schema}.${tp.table}`,
      { table: tp.table, stage: 'rollback' },
    );
  }
  // Before cutover the key table's triggers are on the plain table (after it, on the partitioned one, dropped with it).
  for (const s of dropKeyTriggersSql(tp, tp.table)) await tx.q(s);
  for (const s of lockReferencingSql(known.map((k) => k.fk))) await tx.q(s);
  for (const { fk } of known) for (const s of repointSql(fk, fk.definition)) await tx.q(s);
}

/**
 * Rollback, after `<table>_partitioned` is dropped: the key table's function (with any trigger
 * left) and the key table if ours, in a short transaction under the budget; then each original
 * foreign key that was validated is validated again. One that rows violate is left NOT VALID and
 * said in `left` with what to run.
 */
export async function dropKeyTable(pool: pg.Pool, tp: TablePlan, left: string[], lockTimeoutMs: number): Promise<void> {
  const kt = tp.keyTable;
  if (!kt) return;
  await lockedTx(pool, { what: `drop ${tp.schema}.${kt.table} (rollback of ${tp.schema}.${tp.table})`, lockTimeoutMs }, async (tx) => {
    await tx.q(dropKeyFunctionSql(tp, kt));
    await dropIfOurs(tx.client, tp, kt.table, 'keys', left, tx.q);
  });
  for (const f of await validateOn(pool, tp, tp.table, lockTimeoutMs)) {
    left.push(`${f.message}; it stays NOT VALID (new rows are checked). Fix or delete those rows, then run ${validateSql(f.fk)[1]}`);
  }
}

/** Cleanup: the key table is the application's now (its foreign keys stay on it). */
export async function releaseKeyTable(c: pg.ClientBase, tp: TablePlan): Promise<void> {
  if (!tp.keyTable) return;
  const o = await ownership(c, tp, tp.keyTable.table, 'keys');
  if (o.ours) await release(c, o.ours.id);
}
