// The rehearsal's own activities: the checks of what phase 2 made, the trigger behaviour test,
// sizes, the tables' truth before and after the rollback, and the final "nothing of ours left"
// check; it registers the target and environment checks (activities/rehearsal-environment.ts),
// the smoke and writer activities. The switchover's own stages are reused as they are.
import type pg from 'pg';
import { sqlFile, trialTx, withClient, withTx } from '../src/db';
import { bad, ok, warn, type Check, type TableSizes } from '../src/rehearsal-report';
import * as sql from '../src/sqlgen';
import { KEY_TRIGGERS } from '../src/keytablesql';
import { deleteMarkedSql, deleteWhereSql, markedRowsSql, moveMarkedSql, updateMarkedSql } from '../src/rehearsalsql';
import { isPeriod } from '../src/partitions';
import type { Checksum, TablePlan } from '../src/types';
import { bindDeps, checksum, Deps, stage } from './context';
import { relations, tableState } from './bookkeeping';
import { sampleRow } from './marked';
import { cloneInsertSql, keyLiteral, markedWhere, markerBase, touchColumn } from '../src/markedsql';
import { budgetFor, deadlockTimeoutMs } from './locks';
import { smokeActivities } from './smoke';
import { writerActivities } from './writer';
import { rehearsalEnvironment, rehearsalTarget } from './rehearsal-environment';
import { matviewLeftovers } from './matview-swap';

/** hash of every marked row, by key, on one side. */
async function markedRows(c: pg.ClientBase, tp: TablePlan, table: string): Promise<{ key: string; hash: string; part: string }[]> {
  const r = await c.query(markedRowsSql(tp, table, markedWhere(tp)));
  return r.rows;
}

/** Phase 2's check: the partitioned table is as the plan says (partitions, key, indexes). */
export async function rehearsalPrepareCheck({ pools }: Deps, database: string, tp: TablePlan): Promise<Check[]> {
  return stage('prepare', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const r = (await c.query(sqlFile('rehearsal/partitioned_shape'), [sql.qname(tp.schema, tp.names.partitioned)])).rows[0];
      if (!r) return [bad(tp.table, `${tp.names.partitioned} was not created`)];
      const wanted = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
      const checks = [
        r.kind === 'p' && r.partitions === wanted
          ? ok(
              `${tp.table} partitions`,
              `${tp.names.partitioned}: ${r.partitions} ${tp.interval} partitions ${tp.partitions[0].from}..${tp.partitions[tp.partitions.length - 1].to}`,
            )
          : bad(`${tp.table} partitions`, `${tp.names.partitioned} is relkind ${r.kind} with ${r.partitions} partitions; the plan has ${wanted}`),
        JSON.stringify(r.pk) === JSON.stringify(tp.partitionedKey)
          ? ok(`${tp.table} primary key`, `(${tp.partitionedKey.join(', ')})`)
          : bad(`${tp.table} primary key`, `(${(r.pk ?? []).join(', ')}), the plan has (${tp.partitionedKey.join(', ')})`),
        // Secondary indexes are built after the copy, so only the count so far is reported here.
        ok(`${tp.table} indexes`, `${r.indexes} of the plan's ${tp.indexes.length} indexes exist before the copy`),
      ];
      return checks;
    }),
  );
}

/** Runs one write of the trigger test and compares the marked rows of both sides; adds its check. */
async function compareWrite(
  c: pg.ClientBase,
  tp: TablePlan,
  checks: Check[],
  op: string,
  sqlText: string,
  expectRows: number,
  extra?: (p: { key: string; part: string }[]) => string | null,
): Promise<void> {
  const res = await c.query(sqlText);
  const legacy = await markedRows(c, tp, tp.table);
  const partitioned = await markedRows(c, tp, tp.names.partitioned);
  const same = JSON.stringify(legacy.map((r) => [r.key, r.hash])) === JSON.stringify(partitioned.map((r) => [r.key, r.hash]));
  const problem = !same
    ? `legacy has ${legacy.length} marked row(s), partitioned ${partitioned.length}, or their contents differ`
    : legacy.length !== expectRows
      ? `expected ${expectRows} marked row(s), found ${legacy.length}`
      : (extra?.(partitioned) ?? null);
  checks.push(problem ? bad(`${tp.table} ${op}`, problem) : ok(`${tp.table} ${op}`, `${res.rowCount} row(s); both sides equal (${legacy.length} marked)`));
}

/** The trigger test's writes, in the trial transaction; null when the table has no row to clone. */
async function triggerWrites(c: pg.ClientBase, tp: TablePlan, base: number): Promise<Check[] | null> {
  const touch = touchColumn(tp);
  // The last premade periods (not `pmax`, whose lower bound is the last period's end).
  const periods = tp.partitions.filter(isPeriod);
  const last = periods[periods.length - 1];
  const prev = periods[periods.length - 2];
  const [a, b] = [base - 1, base - 2];
  const checks: Check[] = [];
  const compare = (op: string, sqlText: string, expectRows: number, extra?: (p: { key: string; part: string }[]) => string | null) =>
    compareWrite(c, tp, checks, op, sqlText, expectRows, extra);
  // Ours gives way in any lock cycle with the staging application (activities/locks.ts).
  await c.query(sqlFile('session/lock_timeout'), [`${budgetFor(5000, await deadlockTimeoutMs(c))}ms`]);
  const sample = await sampleRow(c, tp);
  if (!sample) return null;
  await compare('insert', cloneInsertSql(tp, { sampleKey: sample.key, id: a, day: last.from }), 1);
  if (touch) await compare('update', updateMarkedSql(tp, touch.set, a), 1);
  const prevPart = sql.partitionNameFor(tp, prev);
  await compare('key-moving update', moveMarkedSql(tp, keyLiteral(tp, prev.from), a), 1, (p) =>
    p.length === 1 && p[0].part.replace(/^.*\./, '').replace(/"/g, '') === prevPart
      ? null
      : `row did not move to ${prevPart} (found in ${p.map((x) => x.part).join(', ')})`,
  );
  await compare('upsert (insert)', cloneInsertSql(tp, { sampleKey: sample.key, id: b, day: last.from, upsert: true }), 2);
  await compare('upsert (update)', cloneInsertSql(tp, { sampleKey: sample.key, id: a, day: prev.from, upsert: true }), 2);
  await compare('delete', deleteMarkedSql(tp, [a, b]), 0);
  return checks;
}

/**
 * Phase 3: insert, update, key-moving update, upsert (both paths) and delete of marked rows
 * through the dual-write trigger, each compared row by row with the partitioned side. One
 * transaction, rolled back: the marked rows never become visible to anyone.
 */
export async function rehearsalTriggerTest({ pools }: Deps, database: string, tp: TablePlan): Promise<Check[]> {
  return stage('trigger behaviour', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const base = markerBase(tp);
      if (base === null) return [warn(tp.table, `no integer key column to mark test rows with (key ${tp.primaryKey.join(', ')}); triggers not exercised`)];
      return trialTx(c, async () => {
        const checks = await triggerWrites(c, tp, base);
        return checks ?? [bad(tp.table, `${tp.table} is empty on staging; seed it so the rehearsal has rows to test with`)];
      });
    }),
  );
}

async function relationSize(c: pg.ClientBase, schema: string, name: string): Promise<number> {
  return Number((await c.query(sqlFile('rehearsal/relation_size'), [sql.qname(schema, name)])).rows[0].b);
}

/** Sizes and rows of each table after cutover: the partitioned table, `_legacy` and the backup. */
export async function measureTables({ pools }: Deps, database: string, plans: TablePlan[]): Promise<TableSizes[]> {
  return stage('measure', undefined, () =>
    withClient(pools.get(database), async (c) => {
      const out: TableSizes[] = [];
      for (const tp of plans) {
        const parts = await c.query(sqlFile('rehearsal/partition_tree_size'), [sql.qname(tp.schema, tp.table)]);
        const rows = await c.query(sql.rowCountSql(tp.schema, tp.table));
        out.push({
          table: tp.table,
          rows: Number(rows.rows[0].n),
          partitionedBytes: Number(parts.rows[0].b),
          legacyBytes: await relationSize(c, tp.schema, tp.names.legacy),
          backupBytes: await relationSize(c, tp.schema, tp.names.backup),
        });
      }
      return out;
    }),
  );
}

/** Each table's checksum by its own name (what the application sees), in one snapshot. */
export async function tableTruth({ pools }: Deps, database: string, plans: TablePlan[]): Promise<Record<string, Checksum>> {
  return stage('rollback test', undefined, () =>
    withTx(
      pools.get(database),
      async (c) => {
        const out: Record<string, Checksum> = {};
        for (const tp of plans) out[tp.table] = await checksum(c, tp, tp.table);
        return out;
      },
      sqlFile('session/begin_repeatable_read_only'),
    ),
  );
}

/** What of ours is still there for one table: relations, functions, triggers, sequences not owned by it. */
async function leftoversOf(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const attachNames = tp.attach ? [tp.attach.history, tp.attach.keyIndex, ...tp.attach.partitions.map((p) => p.name)].filter((x): x is string => !!x) : [];
  const keyTable = tp.keyTable ? [tp.keyTable.table] : [];
  const left = [...(await relations(c, tp.schema, [tp.names.partitioned, tp.names.legacy, tp.names.backup, ...attachNames, ...keyTable])).keys()];
  const fns = (
    await c.query(sqlFile('rehearsal/functions_named'), [
      tp.schema,
      [tp.names.syncFunction, tp.names.mirrorFunction, ...(tp.names.guardFunction ? [tp.names.guardFunction] : []), ...(tp.keyTable ? [tp.keyTable.fn] : [])],
    ])
  ).rows.map((r) => r.name);
  const triggers = (
    await c.query(sqlFile('rehearsal/triggers_named'), [
      sql.qname(tp.schema, tp.table),
      [tp.names.syncTrigger, tp.names.mirrorTrigger, sql.TRUNCATE_GUARD_TRIGGER, ...Object.values(KEY_TRIGGERS)],
    ])
  ).rows.map((r) => r.name);
  const sequences = [];
  for (const s of tp.sequences) {
    const owner = (await c.query(sqlFile('rehearsal/serial_sequence'), [sql.qname(tp.schema, tp.table), s.column])).rows[0].seq;
    if (!owner) sequences.push(`${s.sequence} is not owned by ${tp.table}.${s.column}`);
  }
  return [
    ...left.map((x) => `${x} still exists`),
    ...fns.map((f) => `function ${f}() still exists`),
    ...triggers.map((g) => `trigger ${g} still on ${tp.table}`),
    ...sequences,
    ...(await matviewLeftovers(c, tp)),
  ];
}

/** One table's end state and leftovers as checks; its committed marked rows dropped (how many). */
async function sweepTable(c: pg.ClientBase, tp: TablePlan, checks: Check[]): Promise<number> {
  const state = await tableState(c, tp);
  const problems = await leftoversOf(c, tp);
  checks.push(state !== 'plain' ? bad(`${tp.table} state`, `${tp.table} is ${state}, not a plain table`) : ok(`${tp.table} state`, 'plain table'));
  checks.push(
    problems.length
      ? bad(`${tp.table} leftovers`, problems.join('; '))
      : ok(`${tp.table} leftovers`, 'no copy, legacy, backup, trigger or function of ours; sequences owned by the table'),
  );
  if (markerBase(tp) !== null && state !== 'missing') {
    return (await c.query(deleteWhereSql(tp.schema, tp.table, markedWhere(tp)))).rowCount ?? 0;
  }
  return 0;
}

/** Claims left on the tables as a check; the workflows' copy positions dropped (how many). */
async function sweepBookkeeping(c: pg.ClientBase, plans: TablePlan[], workflowIds: string[], checks: Check[]): Promise<number> {
  const hasState = (await c.query(sqlFile('rehearsal/has_state'))).rows[0].ok;
  if (!hasState) return 0;
  const claims = (await c.query(sqlFile('rehearsal/claims_of_tables'), [plans[0]?.schema ?? 'public', plans.map((p) => p.table)])).rows;
  checks.push(claims.length ? bad('claims', claims.map((x) => `${x.table_name} held by ${x.workflow_id}`).join('; ')) : ok('claims', 'no table claimed'));
  return (await c.query(sqlFile('rehearsal/forget_copy_progress'), [workflowIds])).rowCount ?? 0;
}

/**
 * The end state: every table plain and owning its sequences again, nothing of ours left
 * (partitioned copies, legacy and backup tables, triggers, functions, claims), marked rows
 * and copy positions of the given workflows dropped. Audit rows stay. Idempotent.
 */
export async function rehearsalLeftovers(
  { pools }: Deps,
  database: string,
  plans: TablePlan[],
  workflowIds: string[],
): Promise<{ checks: Check[]; droppedMarked: number; droppedProgress: number }> {
  return stage('leftovers', undefined, () =>
    withTx(pools.get(database), async (c) => {
      const checks: Check[] = [];
      let droppedMarked = 0;
      for (const tp of plans) droppedMarked += await sweepTable(c, tp, checks);
      const droppedProgress = await sweepBookkeeping(c, plans, workflowIds, checks);
      checks.push(
        droppedMarked
          ? warn('marked rows', `${droppedMarked} committed test row(s) of ours found and dropped`)
          : ok('marked rows', 'none of our test rows in the tables'),
      );
      return { checks, droppedMarked, droppedProgress };
    }),
  );
}

/** Production row counts for the forecast, read only: the planner's estimate, or count(*) when there is none. */
export async function productionRows({ pools }: Deps, database: string, schema: string, tables: string[]): Promise<Record<string, number>> {
  return stage('forecast', undefined, () =>
    withTx(
      pools.get(database),
      async (c) => {
        const out: Record<string, number> = {};
        for (const t of tables) {
          const r = (await c.query(sqlFile('rehearsal/estimated_rows'), [sql.qname(schema, t)])).rows[0];
          if (!r) continue;
          let n = Number(r.n);
          if (n < 0) n = Number((await c.query(sql.rowCountSql(schema, t))).rows[0].n);
          out[t] = n;
        }
        return out;
      },
      sqlFile('session/begin_read_only'),
    ),
  );
}

/** The switchover's smoke and writer activities are the rehearsal's too. */
export const rehearsalActivities = (deps: Deps) => ({
  ...smokeActivities(deps),
  ...writerActivities(deps),
  ...bindDeps(deps, {
    rehearsalTarget,
    rehearsalEnvironment,
    rehearsalPrepareCheck,
    rehearsalTriggerTest,
    measureTables,
    tableTruth,
    rehearsalLeftovers,
    productionRows,
  }),
});
