// Secondary indexes and foreign keys of the partitioned table, made after the copy without
// blocking writers. CREATE INDEX on the partitioned parent would take SHARE locks on every
// partition for the whole build, stalling the dual-write trigger (so the application's writes):
// instead each partition's index is built CONCURRENTLY, then the parent's index is made ON ONLY
// the parent and the partitions' indexes attached to it (catalog only). A foreign key checked row
// by row during the copy costs more than the copy; instead each partition gets it NOT VALID, then
// VALIDATE (one set-based scan under a lock writers pass), and the parent's foreign key adopts
// the partitions' validated ones without scanning. Lock-taking steps run under the lock budget of
// activities/locks.ts (lock_timeout below deadlock_timeout, retried with backoff).
// Idempotent: an index left invalid by a crash is dropped and built again; done steps are skipped.
import { retryable } from '../src/errors';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { deferredIndex, indexOn, partitionIndexName } from '../src/copysql';
import { qname } from '../src/sqlgen';
import {
  addForeignKeySql,
  attachPartitionIndexSql,
  dropIndexConcurrentlySql,
  isEmptySql,
  lockAccessExclusiveSql,
  lockShareRowExclusiveSql,
  validateConstraintSql,
} from '../src/indexsql';
import { lockedTx, type LockOpts } from './locks';
import { othersActive } from './pacer';
import type { IndexPlan, TablePlan } from '../src/types';
import { audit, bindDeps, Deps, keepAlive, stage } from './context';

/** The referenced table of a foreign key definition (pg_get_constraintdef: `... REFERENCES <name>(cols) ...`), as quoted there. */
export function referencedTable(definition: string): string {
  const m = /\bREFERENCES\s+((?:"(?:[^"]|"")+"|[^\s("]+)(?:\.(?:"(?:[^"]|"")+"|[^\s("]+))?)\s*\(/.exec(definition);
  if (!m) throw new Error(`cannot read the referenced table of foreign key: ${definition}`);
  return m[1];
}

async function indexState(c: pg.ClientBase, schema: string, name: string): Promise<'missing' | 'valid' | 'invalid'> {
  const r = (await c.query(sqlFile('catalog/index_valid'), [schema, name])).rows[0];
  return !r ? 'missing' : r.indisvalid ? 'valid' : 'invalid';
}

/**
 * Runs `build` as the table's only index build: an earlier attempt that lost its heartbeat may
 * still be building (a retry would take its in-progress index for one left invalid by a crash),
 * so a second one fails retryable until the first has finished (a session advisory lock).
 */
export async function oneIndexBuild<T>(pool: pg.Pool, tp: TablePlan, build: () => Promise<T>): Promise<T> {
  const guard = await pool.connect();
  const key = `partition-switchover index ${tp.schema}.${tp.table}`;
  try {
    if (!(await guard.query(sqlFile('bookkeeping/index_build_lock'), [key])).rows[0].ok) {
      throw retryable('Transient', `an earlier attempt is still building the indexes of ${tp.schema}.${tp.table}; retrying when it has finished`);
    }
    try {
      return await build();
    } finally {
      await guard.query(sqlFile('bookkeeping/index_build_unlock'), [key]).catch(() => undefined);
    }
  } finally {
    guard.release();
  }
}

/** `adaptive`: the adaptive throttle (input.throttle.adaptive); absent in calls from before it: off. */
type BuildOpts = { parallelism?: number; lockTimeoutMs?: number; adaptive?: boolean };
type IndexResult = { table: string; indexes: number; partitionIndexes: number; foreignKeys: number; ms: number };
/** A deferred index of the plan and its place in tp.indexes (its partitions' index names end in it). */
type Deferred = { i: IndexPlan; n: number };

export async function buildIndexes({ pools }: Deps, database: string, tp: TablePlan, opts: BuildOpts = {}): Promise<IndexResult> {
  return stage('index', tp.table, async () => {
    const t0 = Date.now();
    const pool = pools.get(database);
    return oneIndexBuild(pool, tp, async () => {
      const deferred = tp.indexes.map((i, n) => ({ i, n })).filter(({ i }) => deferredIndex(i));
      if (!deferred.length && !tp.foreignKeys.length) return { table: tp.table, indexes: 0, partitionIndexes: 0, foreignKeys: 0, ms: 0 };
      const partitions = await withClient(pool, async (c) =>
        (await c.query(sqlFile('catalog/partitions_of'), [qname(tp.schema, tp.names.partitioned)])).rows.map((r) => r.name as string),
      );
      const built = await buildOnPartitions(pool, tp, deferred, partitions, opts);
      // Two short transactions, each under the lock budget of activities/locks.ts (below
      // deadlock_timeout, so in any lock cycle with a writer ours gives up first, and is retried).
      const indexAttach = await attachIndexes(pool, tp, deferred, partitions, opts.lockTimeoutMs);
      const fkAttach = await attachForeignKeys(pool, tp, opts.lockTimeoutMs);
      await withClient(pool, (c) =>
        audit(c, {
          schema: tp.schema,
          table: tp.table,
          stage: 'INDEXES',
          ms: Date.now() - t0,
          details: {
            indexes: deferred.map(({ i }) => i.tempName),
            foreignKeys: tp.foreignKeys.map((f) => f.name),
            partitions: partitions.length,
            built,
            lockAttempts: { indexes: indexAttach.attempts, foreignKeys: fkAttach.attempts },
          },
        }),
      );
      return { table: tp.table, indexes: deferred.length, partitionIndexes: built, foreignKeys: tp.foreignKeys.length, ms: Date.now() - t0 };
    });
  });
}

export const indexActivities = (deps: Deps) => bindDeps(deps, { buildIndexes });

/**
 * Partitions are shared out to `parallelism` connections; one connection builds all of a
 * partition's indexes (two concurrent builds on one table would wait for each other). With the
 * adaptive throttle on, writers first as in the copy: while a session not ours is at work, only
 * the first connection builds (othersActive, activities/pacer.ts); the others wait, looking again every
 * half second. Returns the partition indexes built.
 */
async function buildOnPartitions(pool: pg.Pool, tp: TablePlan, deferred: Deferred[], partitions: string[], opts: BuildOpts): Promise<number> {
  const ctx = Context.current();
  const queue = [...partitions];
  let built = 0;
  const worker = (k: number) =>
    withClient(pool, async (c) => {
      for (;;) {
        while (k > 0 && opts.adaptive && queue.length && (await othersActive(c))) {
          ctx.heartbeat({ held: 'one index build while the application writes', left: queue.length });
          await ctx.sleep(500);
        }
        const part = queue.shift();
        if (part === undefined) break;
        ctx.heartbeat({ partition: part, left: queue.length });
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('index build cancelled');
        const n = await indexPartition(c, tp, part, deferred, opts.lockTimeoutMs);
        built += n;
        await foreignKeysOn(c, tp, part, opts.lockTimeoutMs);
      }
    });
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.parallelism ?? 2, partitions.length)) }, (_, k) => worker(k)));
  return built;
}

/** The deferred indexes on one partition; returns how many it built. */
async function indexPartition(c: pg.PoolClient, tp: TablePlan, part: string, deferred: Deferred[], lockTimeoutMs?: number): Promise<number> {
  let built = 0;
  for (const { i, n } of deferred) {
    const name = partitionIndexName(part, n);
    const state = await indexState(c, tp.schema, name);
    if (state === 'valid') continue;
    if (state === 'invalid') await c.query(dropIndexConcurrentlySql(tp.schema, name));
    // An empty partition (one made ahead of time) is indexed at once: its SHARE lock is
    // held for a millisecond, where CONCURRENTLY would wait three times for writers.
    const empty = (await c.query(isEmptySql(tp.schema, part))).rows[0].empty as boolean;
    if (empty) {
      await lockedTx({ client: c }, { what: `index ${name}`, lockTimeoutMs }, (tx) => tx.q(indexOn(i, { name, on: qname(tp.schema, part) })));
    } else {
      await keepAlive(() => c.query(indexOn(i, { name, on: qname(tp.schema, part), concurrently: true })), { index: name });
    }
    built++;
  }
  return built;
}

/** The plan's foreign keys on one partition: added NOT VALID, then validated. */
async function foreignKeysOn(c: pg.PoolClient, tp: TablePlan, part: string, lockTimeoutMs?: number): Promise<void> {
  const lockOpts = (what: string): LockOpts => ({ what, lockTimeoutMs });
  for (const f of tp.foreignKeys) {
    const fk = (await c.query(sqlFile('catalog/constraint_validated'), [qname(tp.schema, part), f.name])).rows[0];
    if (!fk) {
      await lockedTx({ client: c }, lockOpts(`foreign key ${f.name} of ${part}`), (tx) =>
        tx.q(addForeignKeySql(qname(tp.schema, part), f, { notValid: true })),
      );
    }
    // The scan runs after its locks (SHARE UPDATE EXCLUSIVE here, ROW SHARE on the referenced table) are held.
    if (!fk?.convalidated) {
      await keepAlive(() =>
        lockedTx({ client: c }, lockOpts(`validation of ${f.name} on ${part}`), (tx) => tx.long(validateConstraintSql(tp.schema, part, f.name))),
      );
    }
  }
}

/** The parent's indexes, made ON ONLY our partitioned table, with the partitions' indexes attached; needs only that table. */
function attachIndexes(pool: pg.Pool, tp: TablePlan, deferred: Deferred[], partitions: string[], lockTimeoutMs?: number) {
  const part = qname(tp.schema, tp.names.partitioned);
  return lockedTx(pool, { what: `index attach of ${tp.schema}.${tp.table}`, lockTimeoutMs }, async (tx) => {
    if (!deferred.length) return;
    await tx.q(lockShareRowExclusiveSql(part));
    for (const { i, n } of deferred) {
      await tx.q(indexOn(i, { name: i.tempName, on: part, only: true }));
      const attached = new Set((await tx.q(sqlFile('catalog/partitions_of'), [qname(tp.schema, i.tempName)])).rows.map((r) => r.name as string));
      for (const p of partitions) {
        const name = partitionIndexName(p, n);
        if (!attached.has(name)) await tx.q(attachPartitionIndexSql(tp.schema, i.tempName, name));
      }
    }
  });
}

/**
 * The foreign keys' attach: adopting the partitions' validated foreign keys drops their
 * action triggers on the referenced table, which takes ACCESS EXCLUSIVE there (PostgreSQL
 * <= 17), held for this transaction only. Referenced table first, then ours: a writer's
 * insert locks them in that order (the table's foreign key check fires before the
 * dual-write trigger, whose name sorts after "RI_ConstraintTrigger"). Taken the other way
 * round, every insert in flight held the referenced table and queued behind our lock on
 * the partitioned table, and the attach never got through under a steady writer.
 * A writer that locks them the other way (a partition-key move, or an update then an
 * insert in one transaction) meets the budget: ours gives up.
 */
function attachForeignKeys(pool: pg.Pool, tp: TablePlan, lockTimeoutMs?: number) {
  const part = qname(tp.schema, tp.names.partitioned);
  return lockedTx(pool, { what: `foreign key attach of ${tp.schema}.${tp.table}`, lockTimeoutMs }, async (tx) => {
    const parentFks = new Set((await tx.client.query(sqlFile('catalog/foreign_key_names'), [part])).rows.map((r) => r.conname as string));
    const missingFks = tp.foreignKeys.filter((f) => !parentFks.has(f.name));
    if (!missingFks.length) return;
    for (const ref of new Set(missingFks.map((f) => referencedTable(f.definition)))) await tx.q(lockAccessExclusiveSql(ref));
    await tx.q(lockShareRowExclusiveSql(part));
    for (const f of missingFks) await tx.q(addForeignKeySql(part, f, { notValid: false }));
  });
}
