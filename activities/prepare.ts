// Stage prepare: `<table>_partitioned` with its keys, constraints, grants and comment in one
// transaction (recorded by oid as ours), then its partitions in transactions sized to the
// server's lock table (each locks a partition's every relation until commit; thousands in one
// transaction run it out of shared memory), then its audit row (its check, PREPARED), so a retry
// finds it done or resumes at the first missing partition. Its undo (activities/rollback-table.ts)
// drops the table, in the same kind of batches, if it is the one this switchover made.
import type pg from 'pg';
import { sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import * as sql from '../src/sqlgen';
import { carryRollbackSql } from '../src/carrysql';
import { batches, partitionsPerTransaction, relationsPerPartition } from '../src/partitions';
import { prepareSteps } from '../src/plansql';
import type { TablePlan } from '../src/types';
import { audit, bindDeps, Deps, stage, throwIfCancelled, workflowId } from './context';
import { auditRow, ownership, recordCreated, release } from './bookkeeping';
import { lockedTx, type LockedTx } from './locks';
import { createKeyTable, fillKeyTable } from './keytable';
import { Context } from '@temporalio/activity';

/** The server's max_locks_per_transaction. */
export async function maxLocksPerTransaction(c: pg.ClientBase): Promise<number> {
  return Number((await c.query(sqlFile('catalog/lock_settings'))).rows[0].locks);
}

/** Partitions of `tp` per transaction on this server (src/partitions.ts partitionsPerTransaction). */
export async function partitionBatch(c: pg.ClientBase, tp: TablePlan): Promise<number> {
  return partitionsPerTransaction(await maxLocksPerTransaction(c), relationsPerPartition(tp.indexes.length));
}

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (a direct call): nothing to report to.
  }
}

/** Creates `<table>_partitioned` with its partitions, keys, indexes, grants and comment. */
export async function prepareTable({ pools }: Deps, database: string, tp: TablePlan): Promise<{ partitions: number; ms: number; transactions?: number }> {
  return stage('prepare', tp.table, async () => {
    const pool = pools.get(database);
    const t0 = Date.now();
    const steps = prepareSteps(tp, { guards: true });
    const partitions = steps.partitions.length;
    const head = await prepareHead(pool, tp, steps.head);
    if (head.done) return head.done;
    // A retry resumes at the first partition not made yet (each batch commits whole).
    const chunks = batches(
      steps.partitions.filter((p) => !head.made!.has(p.name)),
      head.batch!,
    );
    for (const [i, chunk] of chunks.entries()) {
      throwIfCancelled();
      await withTx(pool, async (c) => {
        for (const statement of chunk.flatMap((p) => p.sql)) await c.query(statement);
      });
      heartbeat({ partitionBatch: i + 1, of: chunks.length });
    }
    // The key table's triggers on the table and its fill (foreign keys into the table only).
    await fillKeyTable(pool, tp);
    return withTx(pool, async (c) => {
      const ms = Date.now() - t0;
      const details = { partitions, transactions: chunks.length + 1, partitionsPerTransaction: head.batch };
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'PREPARED', ms, details });
      return { partitions, ms, transactions: chunks.length + 1 };
    });
  });
}

/**
 * The partitioned table itself (`statements`, one transaction), unless there: with the partitions
 * already made and how many go in one transaction, or the result when prepare is done.
 */
async function prepareHead(pool: pg.Pool, tp: TablePlan, statements: string[]) {
  // Done when this run recorded PREPARED. A PREPARED of an earlier run under the same id is
  // not: its table was dropped by that run's rollback. A table under the name that this
  // workflow made (a retry, or a reset re-running this) is resumed.
  return withTx(pool, async (c) => {
    const done = await auditRow(c, tp.schema, tp.table, 'PREPARED');
    if (done) return { done: { partitions: done.details.partitions as number, ms: done.ms as number } };
    const o = await ownership(c, tp, tp.names.partitioned, 'partitioned');
    if (o.exists && o.ours?.workflowId !== workflowId()) {
      throw fail(
        'StateConflict',
        `${tp.schema}.${tp.names.partitioned} already exists and was not made by this switchover; ` +
          `roll back the switchover that made it, or drop it. Nothing was changed.`,
        { table: tp.table, stage: 'prepare' },
      );
    }
    if (!o.exists) {
      for (const statement of statements) await c.query(statement);
      await recordCreated(c, tp, tp.names.partitioned, 'partitioned');
      await createKeyTable(c, tp);
    }
    const made = new Set((await c.query(sqlFile('catalog/partitions_of'), [sql.qname(tp.schema, tp.names.partitioned)])).rows.map((r) => r.name as string));
    return { done: null, batch: await partitionBatch(c, tp), made };
  });
}

export const prepareActivities = (deps: Deps) => bindDeps(deps, { prepareTable });

/**
 * The undo of prepare, after the rollback's short transaction has taken the dual-write trigger
 * off (nothing writes `<table>_partitioned` any more): drops it only if it is the table this
 * switchover made (recorded oid). Its foreign keys first, each in its own short transaction under
 * the lock budget that takes the table, then the referenced one (the order writers lock them);
 * then its partitions in transactions sized to the server's lock table; then the table, with
 * (after a cutover) the identity sequences taking their names back once the copy's are gone with
 * it. Each step is its own transaction: a retry resumes at what is left. Returns whether it dropped it.
 */
export async function dropPrepared(pool: pg.Pool, tp: TablePlan, opts: { left: string[]; lockTimeoutMs: number }): Promise<boolean> {
  const part = sql.qname(tp.schema, tp.names.partitioned);
  const found = await withClient(pool, async (c) => {
    const o = await ownership(c, tp, tp.names.partitioned, 'partitioned');
    for (const m of o.moved)
      opts.left.push(`${m}: made by a switchover as ${tp.schema}.${tp.names.partitioned}, renamed since; left in place, drop it yourself if it is not needed`);
    if (o.exists && !o.ours) opts.left.push(`${tp.schema}.${tp.names.partitioned}: not made by this switchover (its oid is not recorded); left in place`);
    if (!o.ours) return null;
    const oid = String((await c.query(sqlFile('catalog/relation_oid'), [tp.schema, tp.names.partitioned])).rows[0].oid);
    return { oid, batch: await partitionBatch(c, tp) };
  });
  // Gone already (the sequences' names went back in the drop's own transaction), or not ours.
  if (!found) return false;
  const { oid, batch } = found;
  // `step`: what is dropped, for messages (`drop partitions of ...`).
  const locked = (step: string, body: (tx: LockedTx) => Promise<unknown>) =>
    lockedTx(pool, { what: `drop ${step} (rollback of ${tp.schema}.${tp.table})`, lockTimeoutMs: opts.lockTimeoutMs }, body);
  const fks = await withClient(pool, async (c) => (await c.query(sqlFile('catalog/foreign_keys_referencing'), [oid])).rows);
  for (const fk of fks) {
    await locked(`foreign key ${fk.conname} of ${part}`, async (tx) => {
      // The locks first, under the budget; the drop (on every partition) then waits on nothing.
      const [lock, drop] = sql.dropForeignKeySql(tp, { name: fk.conname, refSchema: fk.ref_schema, refTable: fk.ref_table });
      await tx.q(lock);
      await tx.long(drop);
    });
    heartbeat({ droppedForeignKey: fk.conname });
  }
  for (let n = 1; ; n++) {
    throwIfCancelled();
    const dropped = (
      await locked(`partitions of ${part}`, async (tx) => {
        await tx.q(sql.lockPartitionedOnlySql(tp));
        const names = (await tx.client.query(sqlFile('catalog/partitions_of'), [oid])).rows.slice(0, batch).map((r) => r.name as string);
        if (names.length) await tx.long(sql.dropPartitionsSql(tp, names));
        return names.length;
      })
    ).value;
    if (!dropped) break;
    heartbeat({ partitionBatch: n, dropped });
  }
  await locked(part, async (tx) => {
    const o = await ownership(tx.client, tp, tp.names.partitioned, 'partitioned');
    if (!o.ours) return;
    await tx.q(sql.dropTableSql(tp, tp.names.partitioned));
    // After a cutover: the copy's identity sequences went with it; the plain table's take their names back.
    const renames = carryRollbackSql(tp).afterDrop;
    for (const [n, i] of (tp.identities ?? []).entries()) {
      const r = (await tx.client.query(sqlFile('catalog/sequence_names'), [sql.qname(tp.schema, i.legacySequence), sql.qname(tp.schema, i.sequence)])).rows[0];
      if (r.legacy && !r.taken) await tx.q(renames[n]);
    }
    await release(tx.client, o.ours.id);
  });
  return true;
}
