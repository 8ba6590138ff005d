// Partition maintenance after cutover: keep `premake` partitions ready beyond the current
// period (and optionally a default partition), so data dated in the coming periods lands.
// Idempotent: it creates only what is missing, in one transaction per table.
import type pg from 'pg';
import { withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { partitionRanges, type PartitionRange } from '../src/partitions';
import * as sql from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { audit, Deps, stage } from './context';
import { relations } from './prepare';

export interface PartitionsResult {
  table: string;
  /** Partitions created by this run (empty when all existed). */
  created: string[];
  /** Rows moved out of the default partition into a partition created for their range. */
  movedFromDefault: number;
  defaultPartition: string | null;
  /** Upper bound of the last range partition, YYYY-MM-DD. */
  coveredUntil: string;
}

export function defaultPartitionName(tp: TablePlan): string {
  return sql.defaultPartitionName(tp);
}

/** Rows of the default partition that belong to `p` go into it: a physical move, not a write. */
async function createFromDefault(c: pg.ClientBase, tp: TablePlan, p: PartitionRange, defaultName: string): Promise<number> {
  const s = tp.schema;
  const k = sql.ident(tp.partitionKey);
  const inRange = `${k} >= ${sql.boundLiteral(p.from, tp.keyType)} AND ${k} < ${sql.boundLiteral(p.to, tp.keyType)}`;
  const n = Number((await c.query(`SELECT count(*)::bigint AS n FROM ${sql.qname(s, defaultName)} WHERE ${inRange}`)).rows[0].n);
  if (n === 0) {
    await c.query(sql.partitionSql(tp, tp.table, p));
    return 0;
  }
  // Replica mode: neither the mirror to `<table>_legacy` nor the application's triggers may take
  // this delete and re-insert for the application's own (needs superuser, like the move itself).
  const cols = tp.insertColumns.map(sql.ident).join(', ');
  await c.query(`SET LOCAL session_replication_role = replica`);
  await c.query(
    `CREATE TEMP TABLE ps_moved ON COMMIT DROP AS WITH m AS (DELETE FROM ${sql.qname(s, defaultName)} WHERE ${inRange} RETURNING *) SELECT * FROM m`,
  );
  await c.query(sql.partitionSql(tp, tp.table, p));
  await c.query(`INSERT INTO ${sql.qname(s, tp.table)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM ps_moved`);
  await c.query(`DROP TABLE ps_moved`);
  await c.query(`SET LOCAL session_replication_role = origin`);
  return n;
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
                  `select distinct on (a.table_name) a.details from partition_switchover.audit a
                   where a.schema_name = $1::text and a.stage = 'PLAN' and ($2::text[] is null or a.table_name = any($2::text[]))
                     and exists (select 1 from partition_switchover.audit x where x.workflow_id = a.workflow_id
                                 and x.schema_name = a.schema_name and x.table_name = a.table_name and x.stage = 'CUTOVER')
                   order by a.table_name, a.id desc`,
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
      return stage('maintenance', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          // Creating a partition locks the parent; a short timeout keeps writers from queueing long (retried).
          await c.query(`SELECT set_config('lock_timeout', $1::text, true)`, [`${opts.lockTimeoutMs}ms`]);
          const parent = sql.qname(tp.schema, tp.table);
          const today = (await c.query(`select (now() at time zone 'UTC')::date::text as d`)).rows[0].d as string;
          const ranges = partitionRanges({ min: today, max: today, today, interval: tp.interval, premake: opts.premake });
          const children = (
            await c.query(
              `select c.relname as name, p.partdefid = c.oid as is_default
               from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_partitioned_table p on p.partrelid = i.inhparent
               where i.inhparent = $1::regclass`,
              [parent],
            )
          ).rows;
          const existing = new Set(children.map((r) => r.name as string));
          let defaultName: string | null = children.find((r) => r.is_default)?.name ?? null;
          const created: string[] = [];
          let moved = 0;
          for (const p of ranges) {
            const name = sql.partitionNameFor(tp, p);
            if (existing.has(name)) continue;
            moved += defaultName ? await createFromDefault(c, tp, p, defaultName) : (await c.query(sql.partitionSql(tp, tp.table, p)), 0);
            created.push(name);
          }
          if (opts.defaultPartition && !defaultName) {
            await c.query(sql.defaultPartitionSql(tp, tp.table));
            defaultName = defaultPartitionName(tp);
            created.push(defaultName);
          }
          const result: PartitionsResult = { table: tp.table, created, movedFromDefault: moved, defaultPartition: defaultName, coveredUntil: ranges[ranges.length - 1].to };
          if (created.length) await audit(c, { schema: tp.schema, table: tp.table, stage: 'PARTITIONS', details: result });
          return result;
        }),
      );
    },
  };
}
