// Backup, prepare (partitioned table, partitions, keys, indexes, FKs, grants) and dual-write
// triggers. Each runs in one transaction with its audit row, so a retry finds it done.
import type pg from 'pg';
import { sqlFile, withTx } from '../src/db';
import { fail } from '../src/errors';
import { prepareSql } from './preflight';
import * as sql from '../src/sqlgen';
import type { StageRecord, TablePlan } from '../src/types';
import { audit, checksum, Deps, keepAlive, stage, workflowId } from './context';
import { lockedTx } from './locks';

export async function relations(c: pg.ClientBase, schema: string, names: string[]): Promise<Map<string, string>> {
  const rows = (await c.query(sqlFile('catalog/relations'), [schema, names])).rows;
  return new Map(rows.map((r) => [r.name as string, r.relkind as string]));
}

export async function auditRow(c: pg.ClientBase, schema: string, table: string, stageName: string) {
  return (
    await c.query(
      `select rows, sums, row_hash, ms, details, at from partition_switchover.audit
       where workflow_id = $1::text and schema_name = $2::text and table_name = $3::text and stage = $4::text`,
      [workflowId(), schema, table, stageName],
    )
  ).rows[0];
}

export function prepareActivities({ pools }: Deps) {
  return {
    /** `<table>_backup` as a plain copy, counted and checksummed (POST-BACKUP). */
    async backupTable(database: string, tp: TablePlan): Promise<StageRecord> {
      return stage('backup', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          const t0 = Date.now();
          const done = await auditRow(c, tp.schema, tp.table, 'POST-BACKUP');
          const exists = (await relations(c, tp.schema, [tp.names.backup])).has(tp.names.backup);
          if (exists && !done) {
            throw fail(
              'StateConflict',
              `backup table ${tp.schema}.${tp.names.backup} already exists and was not made by this switchover; ` +
                `drop or rename it, or start with "backup": "none". Nothing was changed.`,
              { table: tp.table, stage: 'backup' },
            );
          }
          if (!exists) await keepAlive(() => c.query(sql.backupSql(tp)));
          const sum = await keepAlive(() => checksum(c, tp, tp.names.backup));
          return audit(c, { schema: tp.schema, table: tp.table, stage: 'POST-BACKUP', checksum: sum, ms: Date.now() - t0 });
        }),
      );
    },

    /** Creates `<table>_partitioned` with its partitions, keys, indexes, FKs, grants and comment. */
    async prepareTable(database: string, tp: TablePlan): Promise<{ partitions: number; ms: number }> {
      return stage('prepare', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          const t0 = Date.now();
          const done = await auditRow(c, tp.schema, tp.table, 'PREPARED');
          if (done) return { partitions: done.details.partitions, ms: done.ms };
          if ((await relations(c, tp.schema, [tp.names.partitioned])).size) {
            throw fail(
              'StateConflict',
              `${tp.schema}.${tp.names.partitioned} already exists and was not made by this switchover; ` +
                `roll back the switchover that made it, or drop it. Nothing was changed.`,
              { table: tp.table, stage: 'prepare' },
            );
          }
          for (const statement of prepareSql(tp)) await c.query(statement);
          const partitions = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'PREPARED', ms: Date.now() - t0, details: { partitions } });
          return { partitions, ms: Date.now() - t0 };
        }),
      );
    },

    /** Installs (or upgrades: CREATE OR REPLACE) the dual-write trigger, then checks it is enabled. */
    async installTriggers(database: string, tp: TablePlan): Promise<{ trigger: string; enabled: boolean }> {
      return stage('triggers', tp.table, async () => {
        // CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the live table: under the lock budget, retried.
        const done = await lockedTx(pools.get(database), { what: `trigger install on ${tp.schema}.${tp.table}` }, async (tx) => {
          const c = tx.client;
          for (const statement of sql.dualWriteSql(tp)) await tx.q(statement);
          const row = (
            await c.query(
              `select t.tgenabled::text as enabled from pg_trigger t
               where t.tgrelid = $1::regclass and t.tgname = $2::text and not t.tgisinternal`,
              [sql.qname(tp.schema, tp.table), tp.names.syncTrigger],
            )
          ).rows[0];
          if (!row || row.enabled !== 'O') {
            throw fail('StateConflict', `dual-write trigger ${tp.names.syncTrigger} on ${tp.schema}.${tp.table} is not enabled (tgenabled=${row?.enabled}); ` +
              `check session_replication_role and ALTER TABLE ... ENABLE TRIGGER`, { table: tp.table, stage: 'triggers' });
          }
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'TRIGGERS', details: { trigger: tp.names.syncTrigger, enabled: true } });
          return { trigger: tp.names.syncTrigger, enabled: true };
        });
        return done.value;
      });
    },
  };
}
