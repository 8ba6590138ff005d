// Stage cutover: the renames that make the partitioned table take the table's place and the
// mirror back to `<table>_legacy` (forward), under the lock after the table's changes since
// verification are checked (its check); its undo swaps the names back. Cleanup, after a finished
// switchover, drops the mirror and `<table>_legacy`. Each inspects the database first, so running
// it again (or after a crash) ends in the same state.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { viewSql } from '../src/carrysql';
import { fail, lockGiveUp, retryable } from '../src/errors';
import type { CutoverSpec } from '../src/input';
import { auditCancelled, blockerCanceller, describeSession } from './blockers';
import * as sql from '../src/sqlgen';
import type { CutoverResult, TablePlan } from '../src/types';
import { rowCountSql } from '../src/sqlgen';
import { audit, bindDeps, Deps, keepAlive, stage } from './context';
import { resumeAutovacuum } from './autovacuum';
import { lockedTx, type LockedTx } from './locks';
import { dropIfOurs, priorCutover, ownership, release, recordCreated, tableState, type TableState } from './bookkeeping';
import { switchoverMetrics } from '../src/metrics';
import type { UndoContext } from './undo';
import { behindTriggers, compareWritten, forgetLogged, type Written } from './changed';
import { cleanupMatviews, lockMatviews, matviewsBeforeCutover, swapMatviews } from './matview-swap';
import { ourTriggers } from '../src/ourtriggers';
import { keyTableChanges, lockReferencing, releaseKeyTable, repointToKeys, validateKeyForeignKeys } from './keytable';

/** Locks each of the plan's views that still exists, alone and before its table (readers lock the view first). */
export async function lockViews(tx: LockedTx, tp: TablePlan, more: { createSql: string }[] = []): Promise<void> {
  for (const v of [...(tp.views ?? []), ...more]) {
    const r = (await tx.client.query(sqlFile('catalog/view_owner'), [sql.viewName(v.createSql)])).rows[0];
    if (r) await tx.q(sql.viewLockSql(r.schema, r.name, r.owner));
  }
}

type Counts = { legacy: number; partitioned: number };

/** Row counts of the table and its partitioned copy in one snapshot; null when either is gone (a cutover raced us). */
async function countBoth(pool: pg.Pool, tp: TablePlan, lockTimeoutMs: number): Promise<Counts | null> {
  try {
    const begin = sqlFile('session/begin_repeatable_read_only');
    const { value } = await lockedTx(pool, { what: `row count of ${tp.schema}.${tp.table}`, lockTimeoutMs, begin }, async (tx) => {
      // One core: the application keeps the others while both tables are read.
      await tx.client.query(sqlFile('session/one_core'));
      const n = async (t: string) => Number((await keepAlive(() => tx.long(rowCountSql(tp.schema, t)))).rows[0].n);
      return { legacy: await n(tp.table), partitioned: await n(tp.names.partitioned) };
    });
    return value;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return null;
    throw err;
  }
}

/** The cutover's first lock budget (ms), doubling each try up to lockTimeoutMs (activities/locks.ts). */
export const CUTOVER_FIRST_BUDGET_MS = 100;

/**
 * Cancels the autovacuum workers holding a lock on the table, its partitioned copy or its
 * partitions (as PostgreSQL itself does for a lock request that waits deadlock_timeout), except
 * one that prevents wraparound (PostgreSQL never cancels those: the cutover waits and retries).
 * Returns the relations whose autovacuum was cancelled. Needs the right to signal it (superuser,
 * or pg_signal_autovacuum_worker on PostgreSQL 17+); without it, nothing is cancelled.
 */
async function cancelAutovacuums(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const r = await c
    .query(sqlFile('catalog/cancel_autovacuum'), [[sql.qname(tp.schema, tp.table), sql.qname(tp.schema, tp.names.partitioned)]])
    .catch(() => ({ rows: [] }));
  return r.rows.filter((x) => x.cancelled).map((x) => x.relation as string);
}

const TRIGGER_STATES: Record<string, string> = { O: 'enabled', D: 'disabled', R: 'enabled for replicas only', A: 'enabled always' };

/**
 * What changed on the table since the plan was made and verified, read under the cutover's lock:
 * its columns (names, types, order), our dual-write trigger (present, enabled), the application's
 * triggers and their states. Each change is one phrase for the refusal; `syncTrigger`: whether
 * one of them is about our dual-write trigger.
 */
async function changesSinceVerification(c: pg.ClientBase, tp: TablePlan): Promise<{ changes: string[]; syncTrigger: boolean }> {
  const t = sql.qname(tp.schema, tp.table);
  const shown = `${tp.schema}.${tp.table}`;
  const changes: string[] = [];
  const cols = (await c.query(sqlFile('catalog/column_types'), [t])).rows as { name: string; type: string }[];
  const planned = new Map(tp.columns.map((x) => [x.name, x.type]));
  const now = new Map(cols.map((x) => [x.name, x.type]));
  for (const x of cols) {
    if (!planned.has(x.name)) changes.push(`column ${sql.ident(x.name)} (${x.type}) was added to ${shown}`);
    else if (planned.get(x.name) !== x.type) changes.push(`column ${sql.ident(x.name)} of ${shown} changed type from ${planned.get(x.name)} to ${x.type}`);
  }
  for (const x of tp.columns) if (!now.has(x.name)) changes.push(`column ${sql.ident(x.name)} was dropped from ${shown}`);
  const kept = cols.map((x) => x.name).filter((n) => planned.has(n));
  if (
    !changes.length &&
    kept.join('\0') !==
      tp.columns
        .map((x) => x.name)
        .filter((n) => now.has(n))
        .join('\0')
  ) {
    changes.push(`the columns of ${shown} are in another order`);
  }
  const triggers = new Map((await c.query(sqlFile('catalog/trigger_states'), [t])).rows.map((r) => [r.name as string, r.enabled as string]));
  const sync = triggers.get(tp.names.syncTrigger);
  const syncTrigger = sync === undefined || (sync !== 'A' && sync !== 'O');
  if (sync === undefined) changes.push(`the dual-write trigger ${tp.names.syncTrigger} on ${shown} was dropped`);
  else if (sync !== 'A' && sync !== 'O')
    changes.push(`the dual-write trigger ${tp.names.syncTrigger} on ${shown} is ${TRIGGER_STATES[sync] ?? sync}, not enabled`);
  // Plans recorded before the application's triggers were read carry none to compare with.
  if (tp.triggers) {
    const ours = new Set(ourTriggers(tp.names));
    const verified = new Map(tp.triggers.map((x) => [x.name, x.enabled]));
    for (const [name, enabled] of triggers) {
      if (ours.has(name)) continue;
      const was = verified.get(name);
      if (was === undefined) changes.push(`trigger ${sql.ident(name)} was added to ${shown}`);
      else if (was !== enabled)
        changes.push(`trigger ${sql.ident(name)} on ${shown} is ${TRIGGER_STATES[enabled] ?? enabled}, was ${TRIGGER_STATES[was] ?? was}`);
    }
    for (const name of verified.keys()) if (!triggers.has(name)) changes.push(`trigger ${sql.ident(name)} was dropped from ${shown}`);
  }
  return { changes, syncTrigger };
}

function refuse(tp: TablePlan, changes: string[]) {
  return fail(
    'StateConflict',
    `cutover of ${tp.schema}.${tp.table} refused: since verification, ${changes.join('; ')}. ` +
      `Nothing was changed; roll back (a failed switchover does so itself) and start again`,
    { table: tp.table, stage: 'cutover', changes },
  );
}

export async function cutoverTable({ pools }: Deps, database: string, tp: TablePlan, lockTimeoutMs: number, spec?: CutoverSpec): Promise<CutoverResult> {
  return stage('cutover', tp.table, async () => {
    const pool = pools.get(database);
    const what = `cutover of ${tp.schema}.${tp.table}`;
    // Rows written with the dual-write trigger bypassed (session_replication_role = replica, a
    // TRUNCATE, a disabled trigger) show as a difference in count. Counted before the lock,
    // never under it: the lock must stay milliseconds.
    const before = await withClient(pool, (c) => tableState(c, tp));
    // Plans with the change log compare what was written since verification; older plans count both tables.
    const since = before === 'prepared' && tp.changeLog ? await compareWritten(pool, tp, lockTimeoutMs) : null;
    const counts = before === 'prepared' && !tp.changeLog ? await countBoth(pool, tp, lockTimeoutMs) : null;
    // An autovacuum of the tables would hold the lock until PostgreSQL cancels it for us, a
    // deadlock_timeout later, while every writer queues behind our wait: cancelled first.
    const vacuums = before === 'prepared' ? await withClient(pool, (c) => cancelAutovacuums(c, tp)) : [];
    // Materialized views: ours built if missing, the cheap ones refreshed (outside the lock).
    if (before === 'prepared') await matviewsBeforeCutover(pool, tp);
    // Autovacuum back on the partitions, if the analyze before approval did not get to it (it does).
    if (before === 'prepared') await resumeAutovacuum(pool, tp, lockTimeoutMs);
    // Wait (request → every lock held) and hold (→ commit) of the try that went through:
    // writers queue behind both.
    const clock = { requested: 0, acquired: 0 };
    const canceller = blockerCanceller(spec, Context.current().info.scheduledTimestampMs);
    const lockOpts = { what, lockTimeoutMs, attempts: 8, firstBudgetMs: CUTOVER_FIRST_BUDGET_MS, maxBackoffMs: 500, onBlocked: canceller.onBlocked };
    const { value, attempts } = await lockedTx(pool, lockOpts, (tx) => cutoverLocked(tx, tp, { what, since, counts, clock })).catch(async (err) => {
      // Every session signalled so far, earlier attempts' too: only the last attempt's failure reaches the history.
      const signalled =
        spec?.cancelBlockersAfter && (err as { type?: string }).type === 'LockTimeout' ? await auditCancelled(pool, tp, canceller.cancelled) : [];
      if (!signalled.length) throw err;
      // Without the cause: its message is here already, and the server keeps a pending activity's failure only under a size limit.
      throw retryable('LockTimeout', `${(err as Error).message} Meanwhile (cutover.cancelBlockersAfter): ${signalled.map(describeSession).join('; ')}`);
    });
    // Every session signalled in this run, earlier attempts' too: into the result, so the history has them.
    const signalled = spec?.cancelBlockersAfter ? await auditCancelled(pool, tp, canceller.cancelled) : [];
    const cancelledSessions = signalled.length ? { cancelledSessions: signalled } : {};
    // The foreign keys re-pointed at the key table, validated now that the lock is released (also on a retry that finds it done).
    await validateKeyForeignKeys(pool, tp, lockTimeoutMs);
    if (value.alreadyDone) return { ...value, ...cancelledSessions };
    // The logged keys served the re-check and the verification; the sync trigger is gone.
    await withClient(pool, (c) => forgetLogged(c, tp));
    const lockWaitMs = Math.round((clock.acquired - clock.requested) * 10) / 10;
    const lockHeldMs = Math.round((performance.now() - clock.acquired) * 10) / 10;
    return { ...value, attempts, lockWaitMs, lockHeldMs, ...(vacuums.length ? { cancelledAutovacuums: vacuums } : {}), ...cancelledSessions };
  });
}

/** One try of the cutover under its lock: checks, then the renames; `clock` gets when the locks were asked for and held. */
async function cutoverLocked(
  tx: LockedTx,
  tp: TablePlan,
  o: { what: string; since: Written | null; counts: Counts | null; clock: { requested: number; acquired: number } },
): Promise<CutoverResult> {
  const c = tx.client;
  o.clock.requested = performance.now();
  await lockMatviews(tx, tp);
  await lockReferencing(tx, tp);
  await lockViews(tx, tp);
  // The table's name exists in every state; under its lock no other attempt can change the state.
  for (const s of sql.lockSql(tp, [tp.table])) await tx.q(s);
  const state = await tableState(c, tp);
  if (state === 'cutover' || state === 'cleaned') {
    return priorCutover(c, tp);
  }
  if (state !== 'prepared') {
    throw fail(
      'StateConflict',
      `cannot cut over ${tp.schema}.${tp.table}: it is ${state}, not prepared (no ${tp.names.partitioned}). Roll back and start again.`,
      {
        table: tp.table,
        stage: 'cutover',
      },
    );
  }
  // Prepared now but not when counted: another attempt rolled back and prepared again in between; count again.
  if (!o.counts && !o.since) throw lockGiveUp(`${o.what}: the table changed state while its rows were counted`);
  for (const s of sql.lockSql(tp, [tp.names.partitioned])) await tx.q(s);
  o.clock.acquired = performance.now();
  const changes = await refusalReasons(c, tp, o.since, o.counts);
  if (changes.length) throw refuse(tp, changes);
  const t1 = process.hrtime.bigint();
  for (const s of sql.cutoverSql(tp)) await tx.q(s);
  await swapMatviews(tx, tp);
  await repointToKeys(tx, tp);
  const lockMs = Number(process.hrtime.bigint() - t1) / 1e6;
  // The legacy table is the application's, but from here on ours to drop at cleanup.
  await recordCreated(c, tp, tp.names.legacy, 'legacy');
  await audit(c, { schema: tp.schema, table: tp.table, stage: 'CUTOVER', ms: lockMs, details: { lockMs } });
  switchoverMetrics({ table: tp.table }).cutoverLock.record(lockMs);
  // COMMIT releases the lock; its duration is counted by the caller's measurement below.
  return {
    table: tp.table,
    lockMs,
    attempts: 1,
    alreadyDone: false,
    at: new Date().toISOString(),
    ...(o.since ? { keysComparedSinceVerification: o.since.keys } : {}),
  };
}

/** Why the cutover must refuse, read under its lock (none: it goes on). */
async function refusalReasons(c: pg.ClientBase, tp: TablePlan, since: Written | null, counts: Counts | null): Promise<string[]> {
  const { changes, syncTrigger } = await changesSinceVerification(c, tp);
  changes.push(...(await keyTableChanges(c, tp)));
  // Under the lock: a statement on the partitioned copy, or the trigger toggled, since the comparison.
  if (since) {
    const behind = new Set([...since.changes, ...(await behindTriggers(c, tp)).reasons]);
    // The trigger's state, when read above, says it better than its toggle's trace (behindTriggers' phrase about it).
    const toggle = `dual-write trigger ${sql.ident(tp.names.syncTrigger)}`;
    changes.push(...[...behind].filter((x) => !(syncTrigger && x.includes(toggle))));
  }
  if (counts && counts.legacy !== counts.partitioned) {
    changes.push(
      `${tp.schema}.${tp.table} has ${counts.legacy} rows but ${tp.names.partitioned} ${counts.partitioned} ` +
        `(rows written with the dual-write trigger bypassed: session_replication_role = replica, TRUNCATE, or a disabled trigger)`,
    );
  }
  return changes;
}

/**
 * Drops the mirror trigger, `<table>_legacy` and the backup of a finished switchover: each only
 * if it is the relation the switchover recorded (same oid); anything else is left and listed.
 */
export async function cleanupTable({ pools }: Deps, database: string, tp: TablePlan): Promise<{ state: TableState; dropped: string[]; left: string[] }> {
  return stage('cleanup', tp.table, async () => {
    const done = await lockedTx(pools.get(database), { what: `cleanup of ${tp.schema}.${tp.table}` }, async (tx) => {
      const c = tx.client;
      const state = await tableState(c, tp);
      if (state === 'plain' || state === 'prepared' || state === 'missing') {
        throw fail(
          'StateConflict',
          `cleanup of ${tp.schema}.${tp.table}: the table is ${state}, not cut over; ` +
            `nothing to clean up (to undo a switchover that has not cut over, run the rollback workflow)`,
          { table: tp.table, stage: 'cleanup' },
        );
      }
      for (const s of sql.cleanupSql(tp)) await tx.q(s);
      const dropped: string[] = [];
      const left: string[] = [];
      await cleanupMatviews(tx, tp, dropped, left);
      for (const [name, kind] of [
        [tp.names.legacy, 'legacy'],
        [tp.names.backup, 'backup'],
      ] as const) {
        if (await dropIfOurs(c, tp, name, kind, left, tx.q)) dropped.push(name);
      }
      // The partitioned table is the application's table now.
      const part = await ownership(c, tp, tp.table, 'partitioned');
      if (part.ours) await release(c, part.ours.id);
      await releaseKeyTable(c, tp);
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'CLEANUP', details: { dropped, left } });
      return { state: 'cleaned' as TableState, dropped, left };
    });
    await withClient(pools.get(database), (c) => forgetLogged(c, tp));
    await dropPartitionGuards(pools.get(database), tp);
    return done.value;
  });
}

export const cutoverActivities = (deps: Deps) => bindDeps(deps, { cutoverTable, cleanupTable });

/** Partitions whose guard one cleanup transaction drops (each DROP TRIGGER locks its partition until commit). */
const GUARDS_PER_TRANSACTION = 50;

/**
 * Drops the direct-write guards the partitions kept since prepare (they record nothing since
 * cutover), a batch of partitions per short transaction under the lock budget: the table's writers
 * wait at most that long, and only those writing the batch's partitions.
 */
async function dropPartitionGuards(pool: pg.Pool, tp: TablePlan): Promise<void> {
  for (;;) {
    const { value: n } = await lockedTx(pool, { what: `cleanup of ${tp.schema}.${tp.table}: the direct-write guards of its partitions` }, async (tx) => {
      const names = (
        await tx.client.query(sqlFile('catalog/guarded_partitions'), [sql.qname(tp.schema, tp.table), sql.DIRECT_WRITE_TRIGGER, GUARDS_PER_TRANSACTION])
      ).rows.map((r) => r.name as string);
      for (const s of sql.dropDirectWriteGuardsSql(tp, names)) await tx.q(s);
      return names.length;
    });
    if (n < GUARDS_PER_TRANSACTION) return;
  }
}

/** Names back, mirror off, sequences home, views and trigger states as they were; `<table>_legacy` is the application's again. */
export async function undoCutover(u: UndoContext): Promise<void> {
  const { tx, tp } = u;
  // Views made on the table since cutover (not in the plan): read first, so each is locked alone
  // before the table, as the plan's are (readers lock a view, then its table).
  const oid = String((await tx.client.query(sqlFile('catalog/relation_oid'), [tp.schema, tp.table])).rows[0].oid);
  const before = await viewsMadeSince(tx.client, tp, oid);
  await lockViews(tx, tp, before);
  for (const s of sql.lockSql(tp, [tp.table, tp.names.legacy])) await tx.q(s);
  // Under the lock nothing new can come to depend on the table; one made since the read above is read again by the retry.
  const views = await viewsMadeSince(tx.client, tp, oid);
  if (views.some((v) => !before.some((b) => b.createSql === v.createSql)))
    throw lockGiveUp(`rollback of ${tp.schema}.${tp.table}: a view on it was made while the rollback took its locks`);
  await refuseDependents(tx.client, tp, oid);
  for (const s of sql.undoCutoverSql(tp)) await tx.q(s);
  // The names are back: each view's own text (schema-qualified) now reads the plain table.
  for (const v of views) await tx.q(v.createSql);
  const legacy = await ownership(tx.client, tp, tp.table, 'legacy');
  if (legacy.ours) await release(tx.client, legacy.ours.id);
}

/**
 * Views reading the table (the partitioned one, under the table's name since cutover) that the
 * plan does not carry: made by the application after cutover. Their definitions name relations
 * with their schemas (read with search_path = pg_catalog, then set back).
 */
async function viewsMadeSince(c: pg.ClientBase, tp: TablePlan, oid: string): Promise<{ name: string; createSql: string }[]> {
  const path = (await c.query(sqlFile('session/search_path'))).rows[0].p as string;
  await c.query(sqlFile('session/set_search_path_local'), ['pg_catalog']);
  try {
    const rows = (await c.query(sqlFile('catalog/views'), [oid])).rows;
    const carried = new Set((tp.views ?? []).map((v) => v.name));
    return rows
      .filter((v) => v.relkind === 'v' && !carried.has(`${v.schema}.${v.name}`))
      .map((v) => ({ name: `${v.schema}.${v.name}`, createSql: viewSql(v) }));
  } finally {
    await c.query(sqlFile('session/set_search_path_local'), [path]);
  }
}

/**
 * What depends on the table and cannot follow it back (a materialized view, another table's rule,
 * foreign key or policy, a function with a SQL body): after the names are swapped back it would
 * keep the partitioned table alive under our name, and its drop would refuse. Refused before any
 * change, naming each and the statements to run.
 */
async function refuseDependents(c: pg.ClientBase, tp: TablePlan, oid: string): Promise<void> {
  const deps = (await c.query(sqlFile('catalog/dependents'), [oid])).rows as {
    kind: string;
    name: string;
    drop_sql: string;
    create_sql: string | null;
  }[];
  if (!deps.length) return;
  throw fail(
    'StateConflict',
    `rollback of ${tp.schema}.${tp.table} refused: since cutover, ${deps.map((d) => `${d.kind} ${d.name}`).join(', ')} ` +
      `${deps.length === 1 ? 'depends' : 'depend'} on the partitioned table, which the rollback would drop (a view follows the table back; these cannot). ` +
      `Nothing was changed. Run ${deps.map((d) => `${d.drop_sql};`).join(' ')} then the rollback again` +
      (deps.some((d) => d.create_sql)
        ? `, then ${deps
            .filter((d) => d.create_sql)
            .map((d) => `${d.create_sql};`)
            .join(' ')}`
        : '') +
      (deps.some((d) => !d.create_sql)
        ? ` (make the ${deps
            .filter((d) => !d.create_sql)
            .map((d) => `${d.kind} ${d.name}`)
            .join(', ')} again as you made ${deps.filter((d) => !d.create_sql).length === 1 ? 'it' : 'them'})`
        : ''),
    { table: tp.table, stage: 'rollback', dependents: deps.map((d) => `${d.kind} ${d.name}`) },
  );
}
