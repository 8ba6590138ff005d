// Partition maintenance after cutover: keep `premake` partitions ready beyond the current
// period (and optionally a default partition), so data dated in the coming periods lands.
// Idempotent: it creates only what is missing, in one transaction per table.
import type pg from 'pg';
import { inTx, sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { partitionName, partitionRanges, type PartitionRange } from '../src/partitions';
import * as sql from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { audit, bindDeps, Deps, stage } from './context';
import { analyzeSql, attachToMaxSql, belowWhere, countWhereSql, detachSql, inRangeWhere, moveBackSql, moveOutSql } from '../src/maintenancesql';
import { ownerSql } from '../src/plansql';
import { relations } from './bookkeeping';
import { budgetFor, deadlockTimeoutMs } from './locks';

export interface PartitionsResult {
  table: string;
  /** Partitions created by this run (empty when all existed). */
  created: string[];
  /** Rows moved out of the default partition into a partition created for their range. */
  movedFromDefault: number;
  /** Rows moved out of `<table>_pmax` when months were split out of it (0 for plans without it). */
  movedFromMax?: number;
  /** Set when the parent could not be analyzed (a lock held too long); the next run tries again. */
  analyzeSkipped?: string;
  defaultPartition: string | null;
  /** Upper bound of the last range partition, YYYY-MM-DD. */
  coveredUntil: string;
}

export function defaultPartitionName(tp: TablePlan): string {
  return sql.defaultPartitionName(tp);
}

/**
 * Moves the rows of `from` matching `where` out of it, runs `change` (which makes their new
 * home), and inserts them again through the parent: a physical move, not a write. Replica mode:
 * the application's triggers must not take this delete and re-insert for the application's own
 * (needs superuser, like the move itself). The mirror to `<table>_legacy` is enabled always: it
 * deletes the rows there and inserts them again, the same rows. The key table's triggers (enabled
 * always too) keep the keys: the delete, from the partition, fires none; the insert is marked.
 */
async function moveRows(c: pg.ClientBase, tp: TablePlan, from: string, where: string, change: () => Promise<void>): Promise<number> {
  const n = Number((await c.query(countWhereSql(tp, from, where))).rows[0].n);
  if (n === 0) {
    await change();
    return 0;
  }
  await c.query(sqlFile('session/replica_role'));
  // The key table of foreign keys into the table (activities/keytable.ts) keeps the moved rows' keys.
  await c.query(sqlFile('session/keys_moving'));
  await c.query(moveOutSql(tp, from, where));
  await change();
  await c.query(moveBackSql(tp));
  await c.query(sqlFile('session/keys_moved'));
  await c.query(sqlFile('session/drop_moved'));
  await c.query(sqlFile('session/origin_role'));
  return n;
}

/** Rows of the default partition that belong to `p` go into it. */
async function createFromDefault(c: pg.ClientBase, tp: TablePlan, p: PartitionRange, defaultName: string): Promise<number> {
  return moveRows(c, tp, defaultName, inRangeWhere(tp, p), async () => void (await c.query(sql.partitionSql(tp, tp.table, p))));
}

/** Lower bound of `<table>_pmax` (YYYY-MM-DD), read from the catalog in UTC. */
async function maxLowerBound(c: pg.ClientBase, tp: TablePlan, name: string): Promise<string> {
  await c.query(sqlFile('session/utc'));
  const bound = (await c.query(sqlFile('catalog/partition_bound'), [sql.qname(tp.schema, name)])).rows[0].b as string;
  const m = /FROM \('(\d{4}-\d{2}-\d{2})/.exec(bound);
  if (!m) throw new Error(`cannot read the lower bound of ${tp.schema}.${name}: ${bound}`);
  return m[1];
}

/**
 * Splits `ranges` (consecutive periods from `pmax`'s lower bound on) out of `<table>_pmax`: its
 * rows in those periods are moved out, it is detached and attached again from the last period's
 * end (its far-future rows stay where they are), the periods are made, and the moved rows go
 * back through the parent into them.
 */
async function splitMax(c: pg.ClientBase, tp: TablePlan, maxName: string, ranges: PartitionRange[]): Promise<number> {
  const end = ranges[ranges.length - 1].to;
  return moveRows(c, tp, maxName, belowWhere(tp, end), async () => {
    await c.query(detachSql(tp, maxName));
    for (const p of ranges) await c.query(sql.partitionSql(tp, tp.table, p));
    // Attaching scans what is left in it (far-future rows only) to check the new bound.
    await c.query(attachToMaxSql(tp, maxName, end));
  });
}

/**
 * ANALYZE of a table (a partitioned parent: its partitions too, and the parent's statistics over
 * all of them, which autovacuum never gathers). It takes SHARE UPDATE EXCLUSIVE, which writers do
 * not conflict with, but a DDL or a maintenance job can hold it: under a lock_timeout shorter
 * than deadlock_timeout, tried three times, then skipped with the reason returned.
 */
export async function analyzeTable(c: pg.ClientBase, table: string): Promise<string | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      await inTx(c, async () => {
        await c.query(sqlFile('session/analyze_lock_timeout'));
        await c.query(analyzeSql(table));
      });
      return null;
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      if (attempt >= 3) return `ANALYZE ${table} skipped: ${(err as Error).message}`;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/** Plans of the tables a switchover cut over and that are partitioned now (latest plan per table). */
export async function switchedOverTables({ pools }: Deps, database: string, schema: string, tables?: string[]): Promise<TablePlan[]> {
  return stage('maintenance', undefined, () =>
    withClient(pools.get(database), async (c) => {
      const ok = (await c.query(sqlFile('catalog/relation_exists'), ['partition_switchover.audit'])).rows[0].ok;
      const rows = !ok ? [] : (await c.query(sqlFile('bookkeeping/switched_over_plans'), [schema, tables ?? null])).rows;
      const plans = rows.map((r) => r.details as TablePlan);
      const kinds = await relations(
        c,
        schema,
        plans.map((p) => p.table),
      );
      const live = plans.filter((p) => kinds.get(p.table) === 'p');
      const missing = (tables ?? []).filter((t) => !live.some((p) => p.table === t));
      if (missing.length) {
        throw fail(
          'StateConflict',
          `partition maintenance: ${missing.map((t) => `${schema}.${t}`).join(', ')} ${missing.length > 1 ? 'are' : 'is'} not a table that a ` +
            `switchover cut over (or it was rolled back); run the switchover first, or leave it out of "tables". Nothing was changed.`,
          { tables: missing },
        );
      }
      return live;
    }),
  );
}

/**
 * The periods to have, from the current one (or `<table>_pmax`'s lower bound, or the attach
 * strategy's cutoff) through `premake` more, and which of them are missing: made out of the default
 * partition (`fromDefault`) or split out of `<table>_pmax` (`inMax`).
 */
async function missingRanges(c: pg.ClientBase, tp: TablePlan, premake: number) {
  const today = (await c.query(sqlFile('catalog/today'))).rows[0].today as string;
  const children = (await c.query(sqlFile('catalog/partitions_with_default'), [sql.qname(tp.schema, tp.table)])).rows;
  const existing = new Set(children.map((r) => r.name as string));
  const maxName = partitionName(tp.table, 'pmax');
  // With `<table>_pmax`, the periods from its lower bound on are made out of it (none left out between).
  const maxFrom = existing.has(maxName) ? await maxLowerBound(c, tp, maxName) : null;
  const from = maxFrom !== null && maxFrom < today ? maxFrom : today;
  // The attach strategy: everything before the cutoff is the one history partition.
  const cutoff = tp.attach?.cutoff;
  const start = cutoff && cutoff > from ? cutoff : from;
  const ranges = partitionRanges({ min: start, max: start > today ? start : today, today, interval: tp.interval, premake });
  const defaultName: string | null = children.find((r) => r.is_default)?.name ?? null;
  const missing = ranges.filter((p) => !existing.has(sql.partitionNameFor(tp, p)));
  const inMax = maxFrom === null ? [] : missing.filter((p) => p.to > maxFrom);
  return { ranges, defaultName, maxName, inMax, fromDefault: missing.filter((x) => !inMax.includes(x)) };
}

/** The partitions missing, made in the caller's transaction, and the default one if asked; each given the table's owner. */
async function createMissing(c: pg.ClientBase, tp: TablePlan, opts: { premake: number; defaultPartition: boolean }): Promise<PartitionsResult> {
  const { ranges, maxName, inMax, fromDefault, ...m } = await missingRanges(c, tp, opts.premake);
  let defaultName = m.defaultName;
  const created: string[] = [];
  let moved = 0;
  let movedFromMax = 0;
  for (const p of fromDefault) {
    moved += defaultName ? await createFromDefault(c, tp, p, defaultName) : (await c.query(sql.partitionSql(tp, tp.table, p)), 0);
    created.push(sql.partitionNameFor(tp, p));
  }
  if (inMax.length) {
    movedFromMax = await splitMax(c, tp, maxName, inMax);
    created.push(...inMax.map((p) => sql.partitionNameFor(tp, p)));
  }
  if (opts.defaultPartition && !defaultName) {
    await c.query(sql.defaultPartitionSql(tp, tp.table));
    defaultName = defaultPartitionName(tp);
    created.push(defaultName);
  }
  // A new partition belongs to whoever made it (ownership does not follow the parent): give
  // it the table's owner, who may then drop old partitions for retention as before.
  const owner = (await c.query(sqlFile('catalog/owner'), [sql.qname(tp.schema, tp.table)])).rows[0];
  if (owner.o !== owner.me) for (const name of created) await c.query(ownerSql(tp.schema, name, owner.o));
  return { table: tp.table, created, movedFromDefault: moved, movedFromMax, defaultPartition: defaultName, coveredUntil: ranges[ranges.length - 1].to };
}

/** Creates the partitions missing from the current period through `premake` more, and the default one if asked. */
export async function ensurePartitions(
  { pools }: Deps,
  database: string,
  tp: TablePlan,
  opts: { premake: number; defaultPartition: boolean; lockTimeoutMs: number },
): Promise<PartitionsResult> {
  const result = await stage('maintenance', tp.table, () =>
    withTx(pools.get(database), async (c) => {
      // Creating a partition locks the parent; a short timeout keeps writers from queueing long (retried).
      // Capped below deadlock_timeout, so in a lock cycle with a writer ours is the one that gives up.
      await c.query(sqlFile('session/lock_timeout'), [`${budgetFor(opts.lockTimeoutMs, await deadlockTimeoutMs(c))}ms`]);
      const result = await createMissing(c, tp, opts);
      if (result.created.length) await audit(c, { schema: tp.schema, table: tp.table, stage: 'PARTITIONS', details: result });
      return result;
    }),
  );
  if (!result.created.length) return result;
  // After the commit (creating partitions locked the parent ACCESS EXCLUSIVE until then): the
  // parent's statistics, which nothing else refreshes, then cover the new partitions too.
  // Only when partitions came: ANALYZE of a parent samples every partition again.
  const skipped = await stage('maintenance', tp.table, () => withClient(pools.get(database), (c) => analyzeTable(c, sql.qname(tp.schema, tp.table))));
  return skipped ? { ...result, analyzeSkipped: skipped } : result;
}

export const partitionActivities = (deps: Deps) => bindDeps(deps, { switchedOverTables, ensurePartitions });
