// The rehearsal's own activities: which target it may touch, the environment checks, the
// trigger behaviour test, sizes, the tables' truth before and after the rollback, and the final
// "nothing of ours left" check. The switchover's own stages are reused as they are.
import { statfs } from 'node:fs/promises';
import type pg from 'pg';
import { sqlFile, trialTx, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { bad, ok, warn, type Check, type PhaseOutcome, type TableSizes } from '../src/rehearsal';
import * as sql from '../src/sqlgen';
import { countRowsSql, deleteMarkedSql, deleteWhereSql, markedRowsSql, moveMarkedSql, updateMarkedSql } from '../src/rehearsalsql';
import { isPeriod } from '../src/partitions';
import type { Checksum, TablePlan } from '../src/types';
import { bindDeps, checksum, Deps, stage } from './context';
import { tableState } from './state';
import { cloneInsertSql, keyLiteral, markedWhere, markerBase, sampleRow, touchColumn } from './marked';
import { relations } from './state';
import { budgetFor, deadlockTimeoutMs } from './locks';
import { smokeActivities } from './smoke';
import { writerActivities } from './writer';

/**
 * What a target's server says it is: its cluster's system identifier, the database's oid and
 * name, and whether the worker reaches it on this host. Two targets are the same database when
 * the first two match, however their connection strings are spelled (host names, sockets,
 * users). Never derived from the URL, so no URL (or password in it) ever reaches a result.
 */
export interface TargetIdentity {
  system: string;
  databaseOid: string;
  database: string;
  /** Reached through a Unix socket or a loopback address: the database host is the worker's. */
  local: boolean;
}

export async function targetIdentity(c: pg.ClientBase): Promise<TargetIdentity> {
  const r = (await c.query(sqlFile('rehearsal/target_identity'))).rows[0];
  return { system: r.system, databaseOid: r.database_oid, database: r.database, local: r.local };
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

/** hash of every marked row, by key, on one side. */
async function markedRows(c: pg.ClientBase, tp: TablePlan, table: string): Promise<{ key: string; hash: string; part: string }[]> {
  const r = await c.query(markedRowsSql(tp, table, markedWhere(tp)));
  return r.rows;
}

/** What the target `name` says it is; a role that may not ask is refused (the targets cannot be told apart). */
async function identify(database: string, name: string, pool: pg.Pool): Promise<TargetIdentity> {
  try {
    return await withClient(pool, targetIdentity);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // Without the server's answer the targets cannot be told apart: refuse, never guess.
    if (code === '42501') {
      throw fail(
        'PermissionDenied',
        `cannot tell whether target "${database}" is the same database as "default": target "${name}" does not let this role ` +
          `read pg_control_system() (GRANT EXECUTE ON FUNCTION pg_control_system() TO <worker role>). Nothing was changed.`,
        { database: name },
      );
    }
    throw err;
  }
}

/**
 * Refuses a target that is `default` or the same database as `default`, comparing what both
 * servers say they are (system identifier and database oid), and refuses when it cannot tell.
 */
export async function rehearsalTarget({ pools }: Deps, database: string, forecastDatabase?: string): Promise<{ server: string }> {
  if (forecastDatabase) pools.get(forecastDatabase); // an unknown forecast target fails now, not at sign-off
  if (database === 'default') {
    throw fail('InvalidInput', 'a rehearsal runs on a staging target, never on "default"; nothing was changed');
  }
  const staging = pools.get(database);
  return stage('environment', undefined, async () => {
    const mine = await identify(database, database, staging);
    if (pools.names().includes('default')) {
      const production = await identify(database, 'default', pools.get('default'));
      if (production.system === mine.system && production.databaseOid === mine.databaseOid) {
        throw fail(
          'InvalidInput',
          `database target "${database}" is the same database as "default" (database "${mine.database}" on server ${mine.system}); ` +
            `a rehearsal must run on a separate staging copy. Nothing was changed.`,
          { database },
        );
      }
    }
    return { server: `database "${mine.database}" on server ${mine.system}` };
  });
}

type EnvironmentInput = { database: string; schema: string; tables: string[]; backup: 'table' | 'none' };

async function one(c: pg.ClientBase, name: string, values: unknown[] = []) {
  return (await c.query(sqlFile(`rehearsal/${name}`), values)).rows[0];
}

async function versionCheck(c: pg.ClientBase, checks: Check[]): Promise<{ version: string }> {
  const v = await one(c, 'server_version');
  checks.push(
    v.num >= 140000
      ? ok('server version', `PostgreSQL ${v.version}`)
      : bad('server version', `PostgreSQL ${v.version}: the switchover needs 14 or later (CREATE OR REPLACE TRIGGER, hash_record_extended)`),
  );
  return v;
}

/** Where free space is measured: statfs of the data directory, only when the server is on this host. */
async function freeSpace(c: pg.ClientBase, dir: string | null): Promise<{ free: number | null; how: string }> {
  if (!dir) return { free: null, how: 'data_directory is hidden from this role (needs pg_read_all_settings)' };
  if (!(await targetIdentity(c)).local) return { free: null, how: 'the server is remote (reached over the network); SQL offers no free-space function' };
  try {
    const fs = await statfs(dir);
    return { free: Number(fs.bavail) * Number(fs.bsize), how: `statfs(${dir}) on the worker host, which is the database host` };
  } catch (err) {
    return { free: null, how: `statfs(${dir}) failed on the worker host (${(err as Error).message})` };
  }
}

/** Space the switchover needs: the partitioned copy (heap and indexes), and the backup heap. */
async function diskCheck(c: pg.ClientBase, input: EnvironmentInput, checks: Check[]) {
  const sizes = (await c.query(sqlFile('rehearsal/table_sizes'), [input.schema, input.tables])).rows;
  for (const s of sizes.filter((x) => !x.exists)) checks.push(bad('tables', `${input.schema}.${s.table} does not exist on this target`));
  const needed = sizes.reduce((a, s) => a + Number(s.total) + (input.backup === 'table' ? Number(s.heap) : 0), 0);
  const db = await one(c, 'database_size');
  const measured = `database ${mb(Number(db.size))}, tables ${sizes.map((s) => `${s.table} ${mb(Number(s.total))}`).join(', ')}; the copy needs ${mb(needed)} (partitioned tables with indexes${input.backup === 'table' ? ' + backup heaps' : ''}) plus WAL up to max_wal_size ${mb(Number(db.max_wal))}`;
  const { free, how } = await freeSpace(c, db.dir);
  if (free === null) checks.push(warn('disk', `${measured}; free space not measured: ${how}. Check df on the server's data directory`));
  else if (free < needed) checks.push(bad('disk', `${measured}; only ${mb(free)} free (${how})`));
  else if (free < needed + Number(db.max_wal)) checks.push(warn('disk', `${measured}; ${mb(free)} free (${how}): tight once WAL is counted`));
  else checks.push(ok('disk', `${measured}; ${mb(free)} free (${how})`));
  return { needed, free, databaseBytes: Number(db.size) };
}

async function longTransactionCheck(c: pg.ClientBase, checks: Check[]) {
  const long = (await c.query(sqlFile('rehearsal/long_transactions'))).rows;
  checks.push(
    long.length
      ? warn('long transactions', `${long.map((l) => `pid ${l.pid} (${l.usename}/${l.application_name}, ${l.state}) open ${l.seconds} s`).join('; ')}: they would hold up the cutover's lock`)
      : ok('long transactions', 'none open longer than 60 s'),
  );
  return long;
}

async function timeoutCheck(c: pg.ClientBase, checks: Check[]): Promise<void> {
  const t = await one(c, 'timeouts');
  const timeouts = `lock_timeout ${t.lock}, statement_timeout ${t.stmt}, idle_in_transaction_session_timeout ${t.idle} (the worker's role; the cutover sets its own lock_timeout)`;
  checks.push(
    t.stmt !== '0'
      ? warn('timeouts', `${timeouts}: verification and backup statements longer than ${t.stmt} would be cancelled; see the forecast`)
      : ok('timeouts', timeouts),
  );
}

async function permissionCheck(c: pg.ClientBase, input: EnvironmentInput, checks: Check[]): Promise<void> {
  const perm = (await c.query(sqlFile('rehearsal/table_permissions'), [input.schema, input.tables])).rows;
  const role = await one(c, 'role_privileges', [input.schema]);
  const missing = [
    ...(role.schema_create ? [] : [`CREATE on schema ${input.schema}`]),
    ...(role.db_create ? [] : ['CREATE on the database (for the partition_switchover schema)']),
    ...perm.filter((p) => p.exists && !p.owner).map((p) => `ownership of ${p.table} (renames and triggers)`),
    ...perm.filter((p) => p.exists && !p.dml).map((p) => `SELECT/INSERT/UPDATE/DELETE on ${p.table}`),
  ];
  checks.push(missing.length ? bad('permissions', `role ${role.role} lacks ${missing.join('; ')}`) : ok('permissions', `role ${role.role} owns every table and may create in ${input.schema}`));
}

/** Phase 1: server version, extensions, disk, long transactions, timeouts, permissions. Read only. */
export async function rehearsalEnvironment({ pools }: Deps, input: EnvironmentInput): Promise<PhaseOutcome> {
  return stage('environment', undefined, () =>
    withClient(pools.get(input.database), async (c) => {
      const checks: Check[] = [];
      const v = await versionCheck(c, checks);
      const ext = (await c.query(sqlFile('rehearsal/extensions'))).rows.map((r) => r.e as string);
      checks.push(ok('extensions', ext.join(', ') || 'none'));
      const { needed, free, databaseBytes } = await diskCheck(c, input, checks);
      const long = await longTransactionCheck(c, checks);
      await timeoutCheck(c, checks);
      await permissionCheck(c, input, checks);
      const failed = checks.filter((x) => x.status === 'fail').length;
      return {
        summary: `PostgreSQL ${v.version}; needs ${mb(needed)}${free === null ? ', free disk not measured' : `, ${mb(free)} free`}; ${failed ? `${failed} check(s) failed` : 'ready'}`,
        checks,
        details: { serverVersion: v.version, extensions: ext, neededBytes: needed, freeBytes: free, databaseBytes, longTransactions: long },
      };
    }),
  );
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
          ? ok(`${tp.table} partitions`, `${tp.names.partitioned}: ${r.partitions} ${tp.interval} partitions ${tp.partitions[0].from}..${tp.partitions[tp.partitions.length - 1].to}`)
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
  await c.query(sqlFile('rehearsal/set_lock_timeout'), [`${budgetFor(5000, await deadlockTimeoutMs(c))}ms`]);
  const sample = await sampleRow(c, tp);
  if (!sample) return null;
  await compare('insert', cloneInsertSql(tp, { sampleKey: sample.key, id: a, day: last.from }), 1);
  if (touch) await compare('update', updateMarkedSql(tp, touch.set, a), 1);
  const prevPart = sql.partitionNameFor(tp, prev);
  await compare('key-moving update', moveMarkedSql(tp, keyLiteral(tp, prev.from), a), 1, (p) =>
    p.length === 1 && p[0].part.replace(/^.*\./, '').replace(/"/g, '') === prevPart ? null : `row did not move to ${prevPart} (found in ${p.map((x) => x.part).join(', ')})`,
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
        const rows = await c.query(countRowsSql(tp.schema, tp.table));
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
      sqlFile('rehearsal/begin_snapshot'),
    ),
  );
}

/** What of ours is still there for one table: relations, functions, triggers, sequences not owned by it. */
async function leftoversOf(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const attachNames = tp.attach ? [tp.attach.history, tp.attach.keyIndex, ...tp.attach.partitions.map((p) => p.name)].filter((x): x is string => !!x) : [];
  const left = [...(await relations(c, tp.schema, [tp.names.partitioned, tp.names.legacy, tp.names.backup, ...attachNames])).keys()];
  const fns = (
    await c.query(sqlFile('rehearsal/functions_named'), [tp.schema, [tp.names.syncFunction, tp.names.mirrorFunction, ...(tp.names.guardFunction ? [tp.names.guardFunction] : [])]])
  ).rows.map((r) => r.name);
  const triggers = (
    await c.query(sqlFile('rehearsal/triggers_named'), [sql.qname(tp.schema, tp.table), [tp.names.syncTrigger, tp.names.mirrorTrigger, sql.TRUNCATE_GUARD_TRIGGER]])
  ).rows.map((r) => r.name);
  const sequences = [];
  for (const s of tp.sequences) {
    const owner = (await c.query(sqlFile('rehearsal/serial_sequence'), [sql.qname(tp.schema, tp.table), s.column])).rows[0].seq;
    if (!owner) sequences.push(`${s.sequence} is not owned by ${tp.table}.${s.column}`);
  }
  return [...left.map((x) => `${x} still exists`), ...fns.map((f) => `function ${f}() still exists`), ...triggers.map((g) => `trigger ${g} still on ${tp.table}`), ...sequences];
}

/** One table's end state and leftovers as checks; its committed marked rows dropped (how many). */
async function sweepTable(c: pg.ClientBase, tp: TablePlan, checks: Check[]): Promise<number> {
  const state = await tableState(c, tp);
  const problems = await leftoversOf(c, tp);
  checks.push(state !== 'plain' ? bad(`${tp.table} state`, `${tp.table} is ${state}, not a plain table`) : ok(`${tp.table} state`, 'plain table'));
  checks.push(problems.length ? bad(`${tp.table} leftovers`, problems.join('; ')) : ok(`${tp.table} leftovers`, 'no copy, legacy, backup, trigger or function of ours; sequences owned by the table'));
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
      checks.push(droppedMarked ? warn('marked rows', `${droppedMarked} committed test row(s) of ours found and dropped`) : ok('marked rows', 'none of our test rows in the tables'));
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
          if (n < 0) n = Number((await c.query(countRowsSql(schema, t))).rows[0].n);
          out[t] = n;
        }
        return out;
      },
      sqlFile('rehearsal/begin_read_only'),
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
