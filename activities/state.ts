// Our bookkeeping schema, table claims (one switchover per table), and stage records.
import { sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import type { StageRecord, TablePlan } from '../src/types';
import { audit, checksum, Deps, keepAlive, stage, workflowId } from './context';

export function stateActivities({ pools }: Deps) {
  return {
    /** Creates the `partition_switchover` schema (idempotent: IF NOT EXISTS / OR REPLACE). */
    async ensureState(database: string): Promise<void> {
      await stage('state', undefined, () =>
        withTx(pools.get(database), async (c) => {
          // Serialize concurrent first runs: CREATE ... IF NOT EXISTS races on the catalog.
          await c.query(`select pg_advisory_xact_lock(hashtext('partition_switchover.state'))`);
          await c.query(sqlFile('state'));
        }),
      );
    },

    /**
     * Claims every table for this workflow, or refuses naming the workflow that holds one, and
     * records each table's plan (PLAN) so a rollback can find what this switchover did.
     */
    async claimTables(database: string, plans: TablePlan[]): Promise<void> {
      const me = workflowId();
      await stage('claim', undefined, () =>
        withTx(pools.get(database), async (c) => {
          for (const tp of plans) {
            const { schema, table } = tp;
            await c.query(
              `insert into partition_switchover.claims (schema_name, table_name, workflow_id) values ($1::text, $2::text, $3::text)
               on conflict (schema_name, table_name) do nothing`,
              [schema, table, me],
            );
            const holder = (
              await c.query(`select workflow_id from partition_switchover.claims where schema_name = $1::text and table_name = $2::text`, [
                schema,
                table,
              ])
            ).rows[0].workflow_id;
            if (holder !== me) {
              throw fail(
                'TableBusy',
                `table ${schema}.${table} is already being migrated by workflow ${holder}. Wait for it to finish, ` +
                  `or roll it back (temporal workflow start --type rollback --input '{"switchoverWorkflowId":"${holder}"}'), then start again. Nothing was changed.`,
                { table, holder },
              );
            }
            await audit(c, { schema, table, stage: 'PLAN', details: tp });
          }
        }),
      );
    },

    /** The plans a switchover recorded (by workflow id), or the latest plan of each named table. */
    async loadPlans(database: string, schema: string, by: { workflowId?: string; tables?: string[] }): Promise<TablePlan[]> {
      return stage('rollback', undefined, () =>
        withClient(pools.get(database), async (c) => {
          const exists = (await c.query(`select to_regclass('partition_switchover.audit') is not null as ok`)).rows[0].ok;
          if (!exists) return [];
          const rows = by.workflowId
            ? (await c.query(`select details from partition_switchover.audit where workflow_id = $1::text and stage = 'PLAN' order by id`, [by.workflowId])).rows
            : (
                await c.query(
                  `select distinct on (table_name) details from partition_switchover.audit
                   where schema_name = $1::text and table_name = any($2::text[]) and stage = 'PLAN' order by table_name, id desc`,
                  [schema, by.tables ?? []],
                )
              ).rows;
          return rows.map((r) => r.details as TablePlan);
        }),
      );
    },

    async releaseClaims(database: string, schema: string, tables: string[]): Promise<void> {
      await stage('release', undefined, () =>
        withClient(pools.get(database), (c) =>
          c.query(`delete from partition_switchover.claims where schema_name = $1::text and table_name = any($2::text[])`, [schema, tables]),
        ),
      );
    },

    /** Row count, money sums and row hash of one table, recorded as `stageName` (PRE-FLIGHT, PRE-MIGRATION, ...). */
    async recordChecksum(database: string, tp: TablePlan, stageName: string, table: string): Promise<StageRecord> {
      return stage(stageName, tp.table, () =>
        withClient(pools.get(database), async (c) => {
          const t0 = Date.now();
          const sum = await keepAlive(() => checksum(c, tp, table));
          return audit(c, { schema: tp.schema, table: tp.table, stage: stageName, checksum: sum, ms: Date.now() - t0 });
        }),
      );
    },

    /** Records an event without counts (APPROVAL, REJECTED, CUTOVER, ...). */
    async recordEvent(database: string, schema: string, table: string, event: string, details: Record<string, unknown>): Promise<void> {
      await stage('audit', table, () =>
        withClient(pools.get(database), (c) => audit(c, { schema, table, stage: event, details })),
      );
    },
  };
}
