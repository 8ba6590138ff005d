// Partition maintenance after cutover: keep `premake` partitions ready beyond the current
// period (and optionally a default partition), so data dated in the coming periods lands.
// Idempotent: it creates only what is missing, in one transaction per table.
import type pg from 'pg';
import { inTx, sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { partitionName, partitionRanges, type PartitionRange } from '../src/partitions';
import * as sql from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { audit, Deps, stage } from './context';
import { relations } from './state';
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
 * deletes the rows there and inserts them again, the same rows.
 */
async function moveRows(c: pg.ClientBase, tp: TablePlan, from: string, where: string, change: () => Promise<void>): Promise<number> {
  const n = Number((await c.query(`SELECT count(*)::bigint AS n FROM ${sql.qname(tp.schema, from)} WHERE ${where}`)).rows[0].n);
  if (n === 0) {
    await change();
    return 0;
  }
  const cols = tp.insertColumns.map(sql.ident).join(', ');
  await c.query(`SET LOCAL session_replication_role = replica`);
  await c.query(`CREATE TEMP TABLE ps_moved ON COMMIT DROP AS WITH m AS (DELETE FROM ${sql.qname(tp.schema, from)} WHERE ${where} RETURNING *) SELECT * FROM m`);
  await change();
  await c.query(`INSERT INTO ${sql.qname(tp.schema, tp.table)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ps_moved`);
  await c.query(`DROP TABLE ps_moved`);
  await c.query(`SET LOCAL session_replication_role = origin`);
  return n;
}

/** Rows of the default partition that belong to `p` go into it. */
async function createFromDefault(c: pg.ClientBase, tp: TablePlan, p: PartitionRange, defaultName: string): Promise<number> {
  const k = sql.ident(tp.partitionKey);
  const inRange = `${k} >= ${sql.boundLiteral(p.from, tp.keyType)} AND ${k} < ${sql.boundLiteral(p.to, tp.keyType)}`;
  return moveRows(c, tp, defaultName, inRange, async () => void (await c.query(sql.partitionSql(tp, tp.table, p))));
}

/** Lower bound of `<table>_pmax` (YYYY-MM-DD), read from the catalog in UTC. */
async function maxLowerBound(c: pg.ClientBase, tp: TablePlan, name: string): Promise<string> {
  await c.query(`SET LOCAL timezone = 'UTC'`);
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
  const below = `${sql.ident(tp.partitionKey)} < ${sql.boundLiteral(end, tp.keyType)}`;
  return moveRows(c, tp, maxName, below, async () => {
    const parent = sql.qname(tp.schema, tp.table);
    await c.query(`ALTER TABLE ${parent} DETACH PARTITION ${sql.qname(tp.schema, maxName)}`);
    for (const p of ranges) await c.query(sql.partitionSql(tp, tp.table, p));
    // Attaching scans what is left in it (far-future rows only) to check the new bound.
    await c.query(
      `ALTER TABLE ${parent} ATTACH PARTITION ${sql.qname(tp.schema, maxName)} FOR VALUES FROM (${sql.boundLiteral(end, tp.keyType)}) TO (MAXVALUE)`,
    );
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
        await c.query(`SET LOCAL lock_timeout = '500ms'`);
        await c.query(`ANALYZE ${table}`);
      });
      return null;
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      if (attempt >= 3) return `ANALYZE ${table} skipped: ${(err as Error).message}`;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

export function partitionActivities({ pools }: Deps) {
  return {
    /** Plans of the tables a switchover cut over and that are partitioned now (latest plan per table). */
    async switchedOverTables(database: string, schema: string, tables?: string[]): Promise<TablePlan[]> {
      return stage('maintenance', undefined, () =>
        withClient(pools.get(database), async (c) => {
          const ok = (await c.query(`select to_regclass('partition_switchover.audit') is not null as ok`)).rows[0].ok;
          const rows = !ok
            ? []
            : (
                await c.query(
                  sqlFile('bookkeeping/switched_over_plans'),
                  [schema, tables ?? null],
                )
              ).rows;
          const plans = rows.map((r) => r.details as TablePlan);
          const kinds = await relations(c, schema, plans.map((p) => p.table));
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
    },

    /** Creates the partitions missing from the current period through `premake` more, and the default one if asked. */
    async ensurePartitions(
      database: string,
      tp: TablePlan,
      opts: { premake: number; defaultPartition: boolean; lockTimeoutMs: number },
    ): Promise<PartitionsResult> {
      const result = await stage('maintenance', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          // Creating a partition locks the parent; a short timeout keeps writers from queueing long (retried).
          // Capped below deadlock_timeout, so in a lock cycle with a writer ours is the one that gives up.
          await c.query(`SELECT set_config('lock_timeout', $1::text, true)`, [`${budgetFor(opts.lockTimeoutMs, await deadlockTimeoutMs(c))}ms`]);
          const parent = sql.qname(tp.schema, tp.table);
          const today = (await c.query(`select (now() at time zone 'UTC')::date::text as d`)).rows[0].d as string;
          const children = (
            await c.query(
              sqlFile('catalog/partitions_with_default'),
              [parent],
            )
          ).rows;
          const existing = new Set(children.map((r) => r.name as string));
          const maxName = partitionName(tp.table, 'pmax');
          // With `<table>_pmax`, the periods from its lower bound on are made out of it (none left out between).
          const maxFrom = existing.has(maxName) ? await maxLowerBound(c, tp, maxName) : null;
          const from = maxFrom !== null && maxFrom < today ? maxFrom : today;
          // The attach strategy: everything before the cutoff is the one history partition.
          const cutoff = tp.attach?.cutoff;
          const start = cutoff && cutoff > from ? cutoff : from;
          const ranges = partitionRanges({ min: start, max: start > today ? start : today, today, interval: tp.interval, premake: opts.premake });
          let defaultName: string | null = children.find((r) => r.is_default)?.name ?? null;
          const created: string[] = [];
          let moved = 0;
          let movedFromMax = 0;
          const missing = ranges.filter((p) => !existing.has(sql.partitionNameFor(tp, p)));
          const inMax = maxFrom === null ? [] : missing.filter((p) => p.to > maxFrom);
          for (const p of missing.filter((x) => !inMax.includes(x))) {
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
          const owner = (await c.query(sqlFile('catalog/owner'), [parent])).rows[0];
          if (owner.o !== owner.me) for (const name of created) await c.query(`ALTER TABLE ${sql.qname(tp.schema, name)} OWNER TO ${sql.ident(owner.o)}`);
          const result: PartitionsResult = {
            table: tp.table,
            created,
            movedFromDefault: moved,
            movedFromMax,
            defaultPartition: defaultName,
            coveredUntil: ranges[ranges.length - 1].to,
          };
          if (created.length) await audit(c, { schema: tp.schema, table: tp.table, stage: 'PARTITIONS', details: result });
          return result;
        }),
      );
      if (!result.created.length) return result;
      // After the commit (creating partitions locked the parent ACCESS EXCLUSIVE until then): the
      // parent's statistics, which nothing else refreshes, then cover the new partitions too.
      // Only when partitions came: ANALYZE of a parent samples every partition again.
      const skipped = await stage('maintenance', tp.table, () => withClient(pools.get(database), (c) => analyzeTable(c, sql.qname(tp.schema, tp.table))));
      return skipped ? { ...result, analyzeSkipped: skipped } : result;
    },
  };
}
