// Backup, prepare (partitioned table, partitions, keys, indexes, FKs, grants) and dual-write
// triggers. Each runs in one transaction with its audit row, so a retry finds it done.
import type pg from 'pg';
import { sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { prepareSql } from './preflight';
import * as sql from '../src/sqlgen';
import type { StageRecord, TablePlan } from '../src/types';
import { audit, checksum, Deps, keepAlive, runId, stage, workflowId } from './context';
import { lockedTx } from './locks';
import { ownership, recordCreated } from './state';

export async function relations(c: pg.ClientBase, schema: string, names: string[]): Promise<Map<string, string>> {
  const rows = (await c.query(sqlFile('catalog/relations'), [schema, names])).rows;
  return new Map(rows.map((r) => [r.name as string, r.relkind as string]));
}

export async function auditRow(c: pg.ClientBase, schema: string, table: string, stageName: string) {
  return (
    await c.query(
      `select rows, sums, row_hash, ms, details, at from partition_switchover.audit
       where workflow_id = $1::text and run_id = $5::text and schema_name = $2::text and table_name = $3::text and stage = $4::text`,
      [workflowId(), schema, table, stageName, runId()],
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
          // Ours when this run recorded it, or (a reset re-runs this) the same workflow made it.
          const done = await auditRow(c, tp.schema, tp.table, 'POST-BACKUP');
          const o = await ownership(c, tp, tp.names.backup, 'backup');
          const exists = o.exists;
          if (exists && !done && o.ours?.workflowId !== workflowId()) {
            throw fail(
              'StateConflict',
              `backup table ${tp.schema}.${tp.names.backup} already exists and was not made by this switchover; ` +
                `drop or rename it, or start with "backup": "none". Nothing was changed.`,
              { table: tp.table, stage: 'backup' },
            );
          }
          if (!exists) {
            await keepAlive(() => c.query(sql.backupSql(tp)));
            await recordCreated(c, tp, tp.names.backup, 'backup');
          }
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
          // Done when this run recorded PREPARED, or (a reset re-runs this) the table under the name is
          // the one this workflow made. A PREPARED of an earlier run under the same id is not: its
          // table was dropped by that run's rollback.
          const done = await auditRow(c, tp.schema, tp.table, 'PREPARED');
          if (done) return { partitions: done.details.partitions, ms: done.ms };
          const o = await ownership(c, tp, tp.names.partitioned, 'partitioned');
          if (o.ours?.workflowId === workflowId()) {
            return { partitions: tp.partitions.length + (tp.defaultPartition ? 1 : 0), ms: 0 };
          }
          if (o.exists) {
            throw fail(
              'StateConflict',
              `${tp.schema}.${tp.names.partitioned} already exists and was not made by this switchover; ` +
                `roll back the switchover that made it, or drop it. Nothing was changed.`,
              { table: tp.table, stage: 'prepare' },
            );
          }
          for (const statement of prepareSql(tp)) await c.query(statement);
          await recordCreated(c, tp, tp.names.partitioned, 'partitioned');
          const partitions = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'PREPARED', ms: Date.now() - t0, details: { partitions } });
          return { partitions, ms: Date.now() - t0 };
        }),
      );
    },

    /** Installs (or upgrades: CREATE OR REPLACE) the dual-write trigger, then checks it is enabled. */
    async installTriggers(database: string, tp: TablePlan): Promise<{ trigger: string; enabled: boolean }> {
      return stage('triggers', tp.table, async () => {
        // First, in a transaction of its own: the trigger's target must be there, or every write to
        // the live table would fail until something notices.
        await withClient(pools.get(database), async (c) => {
          const target = (await relations(c, tp.schema, [tp.names.partitioned])).get(tp.names.partitioned);
          if (target !== 'p') {
            throw fail(
              'StateConflict',
              `dual-write trigger not installed on ${tp.schema}.${tp.table}: its target ${tp.schema}.${tp.names.partitioned} ` +
                `${target ? `is not a partitioned table (relkind ${target})` : 'does not exist'}. Nothing was changed; ` +
                `roll back this switchover and start again.`,
              { table: tp.table, stage: 'triggers' },
            );
          }
        });
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
