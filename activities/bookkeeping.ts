// Our bookkeeping schema, table claims (one switchover per table), and stage records.
import type pg from 'pg';
import { sqlFile, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { dropTableSql } from '../src/sqlgen';
import type { CutoverResult, StageRecord, TablePlan } from '../src/types';
import { audit, bindDeps, checksum, Deps, keepAlive, runId, stage, workflowId } from './context';

export async function relations(c: pg.ClientBase, schema: string, names: string[]): Promise<Map<string, string>> {
  const rows = (await c.query(sqlFile('catalog/relations'), [schema, names])).rows;
  return new Map(rows.map((r) => [r.name as string, r.relkind as string]));
}

export async function auditRow(c: pg.ClientBase, schema: string, table: string, stageName: string) {
  return (await c.query(sqlFile('bookkeeping/audit_row'), [workflowId(), schema, table, stageName, runId()])).rows[0];
}

/** The result of a cutover this switchover made already (a retry found the table cut over): its recorded lock time and instant. */
export async function priorCutover(c: pg.ClientBase, tp: TablePlan): Promise<CutoverResult> {
  const prior = await auditRow(c, tp.schema, tp.table, 'CUTOVER');
  return { table: tp.table, lockMs: prior?.ms ?? 0, attempts: 0, alreadyDone: true, at: new Date(prior?.at ?? Date.now()).toISOString() };
}

/** `index`: an index the attach strategy built on the application's table (activities/attach.ts); `keys`: the key table (activities/keytable.ts). */
export type CreatedKind = 'backup' | 'partitioned' | 'legacy' | 'index' | 'keys' | SplitKind;
/** The history split's (activities/split.ts): `<table>_split`, its period tables, the key index, `<table>_history_legacy`. */
export type SplitKind = 'split' | 'split-period' | 'split-index' | 'history-legacy';

/** Records that this run made (or, for `legacy`, took over) the relation now named `name`; call in the transaction that made it. */
export async function recordCreated(c: pg.ClientBase, tp: TablePlan, name: string, kind: CreatedKind): Promise<void> {
  await c.query(sqlFile('bookkeeping/record_created'), [workflowId(), runId(), tp.schema, tp.table, name, kind]);
}

/**
 * What stands under `name` and whether it is the relation a switchover of this table recorded as
 * `kind` (same oid, not yet released). `moved`: ours, but renamed away (no longer under `name`).
 */
export async function ownership(
  c: pg.ClientBase,
  tp: TablePlan,
  name: string,
  kind: CreatedKind,
): Promise<{ exists: boolean; ours: { id: string; workflowId: string } | null; moved: string[] }> {
  const rel = (await c.query(sqlFile('catalog/relation_oid'), [tp.schema, name])).rows[0];
  if (!(await c.query(sqlFile('catalog/relation_exists'), ['partition_switchover.created'])).rows[0].ok) {
    return { exists: !!rel, ours: null, moved: [] };
  }
  const recorded = (await c.query(sqlFile('bookkeeping/created_of'), [tp.schema, tp.table, kind])).rows;
  const mine = rel ? recorded.find((r) => r.oid === String(rel.oid)) : undefined;
  return {
    exists: !!rel,
    ours: mine ? { id: mine.id, workflowId: mine.workflow_id } : null,
    moved: recorded.filter((r) => r !== mine && r.relname).map((r) => `${r.nspname}.${r.relname}`),
  };
}

/**
 * Drops `name` only if it is the relation recorded as `kind` for this table; otherwise leaves it and
 * says why in `left`. Returns whether it dropped it.
 */
export async function dropIfOurs(
  c: pg.ClientBase,
  tp: TablePlan,
  name: string,
  kind: CreatedKind,
  left: string[],
  /** How the DROP runs: the caller's lock budget (activities/locks.ts) where it has one. */
  exec: (text: string) => Promise<unknown> = (text) => c.query(text),
): Promise<boolean> {
  const o = await ownership(c, tp, name, kind);
  for (const m of o.moved) left.push(`${m}: made by a switchover as ${tp.schema}.${name}, renamed since; left in place, drop it yourself if it is not needed`);
  if (o.exists && !o.ours) {
    left.push(`${tp.schema}.${name}: not made by this switchover (its oid is not recorded); left in place`);
  }
  if (!o.ours) return false;
  await exec(dropTableSql(tp, name));
  await release(c, o.ours.id);
  return true;
}

/** Marks a recorded relation as no longer ours (dropped, or the legacy table given back its name). */
export async function release(c: pg.ClientBase, id: string): Promise<void> {
  await c.query(sqlFile('bookkeeping/release_created'), [id]);
}

/** Creates the `partition_switchover` schema (idempotent: IF NOT EXISTS / OR REPLACE). */
export async function ensureState({ pools }: Deps, database: string): Promise<void> {
  await stage('state', undefined, () =>
    withTx(pools.get(database), async (c) => {
      // Serialize concurrent first runs: CREATE ... IF NOT EXISTS races on the catalog.
      await c.query(sqlFile('bookkeeping/state_lock'));
      await c.query(sqlFile('state'));
    }),
  );
}

/**
 * Claims every table for this workflow, or refuses naming the workflow that holds one, and
 * records each table's plan (PLAN) so a rollback can find what this switchover did.
 */
export async function claimTables({ pools }: Deps, database: string, plans: TablePlan[]): Promise<void> {
  const me = workflowId();
  await stage('claim', undefined, () =>
    withTx(pools.get(database), async (c) => {
      for (const tp of plans) {
        const { schema, table } = tp;
        await c.query(sqlFile('bookkeeping/claim'), [schema, table, me]);
        const holder = (await c.query(sqlFile('bookkeeping/claim_holder'), [schema, table])).rows[0].workflow_id;
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
}

/** The plans a switchover recorded (by workflow id), or the latest plan of each named table. */
export async function loadPlans({ pools }: Deps, database: string, schema: string, by: { workflowId?: string; tables?: string[] }): Promise<TablePlan[]> {
  return stage('rollback', undefined, () =>
    withClient(pools.get(database), async (c) => {
      const exists = (await c.query(sqlFile('catalog/relation_exists'), ['partition_switchover.audit'])).rows[0].ok;
      if (!exists) return [];
      const rows = by.workflowId
        ? // The latest run's plans: a workflow id may have been used again after a reject.
          (await c.query(sqlFile('bookkeeping/plans_of_workflow'), [by.workflowId])).rows
        : (await c.query(sqlFile('bookkeeping/plans_of_tables'), [schema, by.tables ?? []])).rows;
      return rows.map((r) => r.details as TablePlan);
    }),
  );
}

export async function releaseClaims({ pools }: Deps, database: string, schema: string, tables: string[]): Promise<void> {
  await stage('release', undefined, () => withClient(pools.get(database), (c) => c.query(sqlFile('bookkeeping/release_claims'), [schema, tables])));
}

/** Row count, money sums and row hash of one table, recorded as `stageName` (PRE-FLIGHT, PRE-MIGRATION, ...). */
export async function recordChecksum({ pools }: Deps, database: string, tp: TablePlan, stageName: string, table: string): Promise<StageRecord> {
  return stage(stageName, tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const sum = await keepAlive(() => checksum(c, tp, table));
      return audit(c, { schema: tp.schema, table: tp.table, stage: stageName, checksum: sum, ms: Date.now() - t0 });
    }),
  );
}

/** Records an event without counts (APPROVAL, REJECTED, CUTOVER, ...). */
export async function recordEvent(
  { pools }: Deps,
  database: string,
  schema: string,
  table: string,
  event: string,
  details: Record<string, unknown>,
): Promise<void> {
  await stage('audit', table, () => withClient(pools.get(database), (c) => audit(c, { schema, table, stage: event, details })));
}

export const stateActivities = (deps: Deps) => bindDeps(deps, { ensureState, claimTables, loadPlans, releaseClaims, recordChecksum, recordEvent });

export type TableState = 'plain' | 'prepared' | 'cutover' | 'cleaned' | 'missing';

/** Where a table stands: plain (nothing of ours), prepared (copy exists), cut over, or cleaned up. */
export async function tableState(c: pg.ClientBase, tp: TablePlan): Promise<TableState> {
  const rels = await relations(c, tp.schema, [tp.table, tp.names.partitioned, tp.names.legacy]);
  const main = rels.get(tp.table);
  if (!main) return 'missing';
  if (main === 'p') return rels.get(tp.names.legacy) === 'r' ? 'cutover' : 'cleaned';
  return rels.get(tp.names.partitioned) === 'p' ? 'prepared' : 'plain';
}
