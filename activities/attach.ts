// The attach strategy's stages: the two unique indexes built concurrently, the CHECK that proves
// the history partition's bound (NOT VALID, then VALIDATE), verification (counts and bounds), the
// cutover in one short transaction under the lock budget, its rollback (before cutover: what was
// added; after it: detach, rows written since brought back, old primary key restored) and cleanup
// (bookkeeping only). Each inspects the database first, so a retry or a run after a crash ends in
// the same state. SQL from src/attachsql.ts.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import * as sql from '../src/sqlgen';
import {
  addCheckSql,
  attachCutoverSql,
  dropIndexConcurrentlySql,
  dropIndexSql,
  lockReferencedSql,
  attachIndexSql,
  attachOf,
  attachParentSql,
  attachVerifySql,
  undoAfterCutoverSql,
  undoBeforeCutoverSql,
  validateCheckSql,
  validateNotValidSql,
} from '../src/attachsql';
import type { CutoverResult, TablePlan } from '../src/types';
import { switchoverMetrics } from '../src/metrics';
import { audit, bindDeps, Deps, keepAlive, stage } from './context';
import { lockedTx } from './locks';
import { lockViews } from './cutover';
import { CUTOFF_MARGIN_MS, cutoffStatus, humanDuration } from '../src/cutoff';
import { oneIndexBuild } from './indexes';
import { dropIfOurs, priorCutover, ownership, recordCreated, release, relations } from './bookkeeping';
import type { UndoContext } from './undo';

export type AttachState = 'plain' | 'prepared' | 'cutover' | 'cleaned' | 'missing';

export interface AttachVerification {
  table: string;
  ok: boolean;
  rows: number;
  /** Rows the history partition's bound would not hold (NULL key, or at or after the cutoff): must be 0. */
  outside: number;
  min: string | null;
  max: string | null;
  cutoff: string;
  checkValid: boolean;
  indexesValid: boolean;
  problems: string[];
  ms: number;
}

async function indexValid(c: pg.ClientBase, schema: string, name: string): Promise<boolean | null> {
  const r = (await c.query(sqlFile('catalog/index_valid'), [schema, name])).rows[0];
  return r ? (r.indisvalid as boolean) : null;
}

async function checkValidated(c: pg.ClientBase, tp: TablePlan, on: string): Promise<boolean | null> {
  const r = (await c.query(sqlFile('catalog/constraint_validated'), [sql.qname(tp.schema, on), attachOf(tp).check])).rows[0];
  return r ? (r.convalidated as boolean) : null;
}

/** Where the table stands: plain, prepared (our CHECK, an index of ours on it, or the parent made), cut over (the parent is ours), cleaned (the parent is the application's). */
export async function attachState(c: pg.ClientBase, tp: TablePlan): Promise<AttachState> {
  const a = attachOf(tp);
  const rels = await relations(c, tp.schema, [tp.table, a.history]);
  const main = rels.get(tp.table);
  if (!main) return 'missing';
  if (main === 'p') return (await ownership(c, tp, tp.table, 'partitioned')).ours ? 'cutover' : 'cleaned';
  const ours = await relations(
    c,
    tp.schema,
    [a.keyIndex, a.pkIndex, tp.names.partitioned].filter((x): x is string => !!x),
  );
  return ours.size || (await checkValidated(c, tp, tp.table)) !== null ? 'prepared' : 'plain';
}

/**
 * What changed on the table since preflight that the cutover would not carry: its columns (names,
 * types, order), its indexes (one made since would stay on the history partition only), the
 * application's triggers and their states. Each difference one phrase.
 */
async function columnChanges(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const t = sql.qname(tp.schema, tp.table);
  const shown = `${tp.schema}.${tp.table}`;
  const changes: string[] = [];
  const cols = (await c.query(sqlFile('catalog/column_types'), [t])).rows as { name: string; type: string }[];
  const now = cols.map((x) => `${x.name} ${x.type}`).join(', ');
  const planned = tp.columns.map((x) => `${x.name} ${x.type}`).join(', ');
  if (now !== planned) changes.push(`the columns of ${shown} changed since preflight (now: ${now}; planned: ${planned})`);
  const a = attachOf(tp);
  const ours = new Set([a.keyIndex, a.pkIndex].filter(Boolean));
  const indexes = (await c.query(sqlFile('catalog/table_index_names'), [t])).rows.map((r) => r.name as string).filter((n) => !ours.has(n));
  const plannedIdx = new Set(tp.indexes.map((i) => i.name));
  for (const n of indexes) if (!plannedIdx.has(n)) changes.push(`index ${n} was added to ${shown}`);
  for (const n of plannedIdx) if (!indexes.includes(n)) changes.push(`index ${n} was dropped from ${shown}`);
  const triggers = new Map((await c.query(sqlFile('catalog/trigger_states'), [t])).rows.map((r) => [r.name as string, r.enabled as string]));
  const verified = new Map((tp.triggers ?? []).map((x) => [x.name, x.enabled]));
  for (const [name, enabled] of triggers) {
    const was = verified.get(name);
    if (was === undefined) changes.push(`trigger ${name} was added to ${shown}`);
    else if (was !== enabled) changes.push(`trigger ${name} on ${shown} changed its enabled state (${was} → ${enabled})`);
  }
  for (const name of verified.keys()) if (!triggers.has(name)) changes.push(`trigger ${name} was dropped from ${shown}`);
  return changes;
}

function heartbeat(details: unknown) {
  Context.current().heartbeat(details);
}

/** The unique indexes on (primary key..., key) and on the primary key, CONCURRENTLY; an invalid one left by a crash is dropped and built again. */
export async function attachIndexes({ pools }: Deps, database: string, tp: TablePlan): Promise<{ table: string; built: string[]; ms: number }> {
  return stage('index', tp.table, async () => {
    const t0 = Date.now();
    const pool = pools.get(database);
    return oneIndexBuild(pool, tp, async () => {
      const built: string[] = [];
      await withClient(pool, async (c) => {
        for (const i of attachIndexSql(tp)) {
          heartbeat({ index: i.name });
          const valid = await indexValid(c, tp.schema, i.name);
          if (valid === false) await keepAlive(() => c.query(dropIndexConcurrentlySql(tp.schema, i.name)));
          if (!valid) {
            await keepAlive(() => c.query(i.sql), { index: i.name });
            built.push(i.name);
          }
          if (!(await ownership(c, tp, i.name, 'index')).ours) await recordCreated(c, tp, i.name, 'index');
        }
      });
      return { table: tp.table, built, ms: Date.now() - t0 };
    });
  });
}

/**
 * The parent under its temporary name, empty, with the partitions from the cutoff on, its keys,
 * indexes, foreign keys, grants: made before cutover so the cutover's lock does not pay for it.
 * One transaction under the lock budget (LIKE reads the table; a foreign key locks the table it references).
 */
export async function attachParent(
  { pools }: Deps,
  database: string,
  tp: TablePlan,
  lockTimeoutMs: number,
): Promise<{ table: string; partitions: number; ms: number }> {
  return stage('prepare', tp.table, async () => {
    const t0 = Date.now();
    const partitions = attachOf(tp).partitions.length;
    await lockedTx(pools.get(database), { what: `parent of ${tp.schema}.${tp.table}`, lockTimeoutMs }, async (tx) => {
      const o = await ownership(tx.client, tp, tp.names.partitioned, 'partitioned');
      if (o.ours) return;
      if (o.exists) {
        throw fail(
          'StateConflict',
          `${tp.schema}.${tp.names.partitioned} already exists and was not made by this switchover; roll back the switchover that made it, or drop it. Nothing was changed.`,
          {
            table: tp.table,
            stage: 'prepare',
          },
        );
      }
      // Catalog work on an empty table: every lock wait within the budget, no statement limit.
      for (const s of attachParentSql(tp, sql.grantSql(tp))) await tx.long(s);
      await recordCreated(tx.client, tp, tp.names.partitioned, 'partitioned');
    });
    return { table: tp.table, partitions, ms: Date.now() - t0 };
  });
}

/** CHECK (key IS NOT NULL AND key < cutoff) NOT VALID under the lock budget, then VALIDATE (writers pass its lock); skipped where done. */
export async function attachCheck({ pools }: Deps, database: string, tp: TablePlan, lockTimeoutMs: number): Promise<{ table: string; ms: number }> {
  return stage('check', tp.table, async () => {
    const t0 = Date.now();
    const pool = pools.get(database);
    const what = (s: string) => ({ what: `${s} of ${tp.schema}.${tp.table}`, lockTimeoutMs });
    await withClient(pool, async (c) => {
      // The table's own NOT VALID constraints (preflight found no row violating them): valid before ATTACH needs them so.
      for (const s of validateNotValidSql(tp)) {
        await keepAlive(() => lockedTx({ client: c }, what('constraint validation'), (tx) => tx.long(s))).catch((err) => {
          const code = (err as { code?: string }).code;
          if (code !== '23514' && code !== '23503') throw err;
          throw fail(
            'StateConflict',
            `${tp.schema}.${tp.table}: ${s} failed (${(err as Error).message}): a row violating it was written since preflight, behind PostgreSQL's checks. The switchover is rolled back; fix the rows and start again`,
            {
              table: tp.table,
              stage: 'check',
            },
          );
        });
      }
      const state = await checkValidated(c, tp, tp.table);
      if (state === true) return;
      if (state === null) await lockedTx({ client: c }, what('CHECK (NOT VALID)'), (tx) => tx.q(addCheckSql(tp)));
      // The scan runs once its SHARE UPDATE EXCLUSIVE lock is held: no statement limit.
      await keepAlive(() => lockedTx({ client: c }, what('CHECK validation'), (tx) => tx.long(validateCheckSql(tp))), { validate: attachOf(tp).check }).catch(
        (err) => {
          if ((err as { code?: string }).code !== '23514') throw err;
          // A row at or after the cutoff (or a NULL key) was written between preflight and the CHECK.
          throw fail(
            'StateConflict',
            `${tp.schema}.${tp.table} has rows with ${tp.partitionKey} NULL or at or after the cutoff ${attachOf(tp).cutoff}, written since preflight ` +
              `(the application writes further ahead than preflight measured). The switchover is rolled back; start again, and preflight picks a later cutoff`,
            { table: tp.table, stage: 'check' },
          );
        },
      );
    });
    return { table: tp.table, ms: Date.now() - t0 };
  });
}

/** Counts and bounds in one snapshot: no row outside FROM (MINVALUE) TO (cutoff); the CHECK valid, the indexes valid. */
export async function attachVerify({ pools }: Deps, database: string, tp: TablePlan): Promise<AttachVerification> {
  return stage('verify', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const a = attachOf(tp);
      const r = (await keepAlive(() => c.query(attachVerifySql(tp)))).rows[0];
      const checkValid = (await checkValidated(c, tp, tp.table)) === true;
      const idx = await Promise.all([a.keyIndex, a.pkIndex].filter((x): x is string => !!x).map((n) => indexValid(c, tp.schema, n)));
      const indexesValid = idx.every((v) => v === true);
      const problems: string[] = [];
      if (Number(r.outside)) problems.push(`${r.outside} rows of ${tp.schema}.${tp.table} have ${tp.partitionKey} NULL or at or after the cutoff ${a.cutoff}`);
      if (!checkValid) problems.push(`the CHECK ${a.check} is missing or not validated`);
      if (!indexesValid) problems.push(`an index of ours (${[a.keyIndex, a.pkIndex].filter(Boolean).join(', ')}) is missing or invalid`);
      problems.push(...(await columnChanges(c, tp)));
      const v: AttachVerification = {
        table: tp.table,
        ok: !problems.length,
        rows: Number(r.rows),
        outside: Number(r.outside),
        min: r.min,
        max: r.max,
        cutoff: a.cutoff,
        checkValid,
        indexesValid,
        problems,
        ms: Date.now() - t0,
      };
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'ATTACH-VERIFY', ms: v.ms, details: v });
      return v;
    }),
  );
}

/** One short transaction under the lock budget (retried with backoff): the table becomes the history partition of a new parent under its name. */
export async function attachCutover({ pools }: Deps, database: string, tp: TablePlan, lockTimeoutMs: number): Promise<CutoverResult> {
  return stage('cutover', tp.table, async () => {
    const what = `cutover of ${tp.schema}.${tp.table}`;
    await refuseNearCutoff(pools.get(database), tp);
    const { value, attempts } = await lockedTx(pools.get(database), { what, lockTimeoutMs }, async (tx) => {
      const c = tx.client;
      await lockViews(tx, tp);
      for (const s of sql.lockSql(tp, [tp.table])) await tx.q(s);
      const state = await attachState(c, tp);
      if (state === 'cutover' || state === 'cleaned') {
        return priorCutover(c, tp);
      }
      const a = attachOf(tp);
      const changes = await columnChanges(c, tp);
      if ((await checkValidated(c, tp, tp.table)) !== true) changes.push(`the CHECK ${a.check} is missing or not validated`);
      for (const n of [a.keyIndex, a.pkIndex]) if (n && (await indexValid(c, tp.schema, n)) !== true) changes.push(`the index ${n} is missing or invalid`);
      if (!(await ownership(c, tp, tp.names.partitioned, 'partitioned')).ours)
        changes.push(`${tp.names.partitioned}, the parent this switchover made, is gone`);
      else for (const s of sql.lockSql(tp, [tp.names.partitioned])) await tx.q(s);
      if (changes.length) {
        throw fail(
          'StateConflict',
          `cutover of ${tp.schema}.${tp.table} refused: ${changes.join('; ')}. Nothing was changed; roll back (a failed switchover does so itself) and start again`,
          {
            table: tp.table,
            stage: 'cutover',
            changes,
          },
        );
      }
      const t1 = process.hrtime.bigint();
      for (const s of attachCutoverSql(tp)) await tx.q(s);
      const lockMs = Number(process.hrtime.bigint() - t1) / 1e6;
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'CUTOVER', ms: lockMs, details: { lockMs, strategy: 'attach', cutoff: a.cutoff } });
      switchoverMetrics({ table: tp.table }).cutoverLock.record(lockMs);
      return { table: tp.table, lockMs, attempts: 1, alreadyDone: false, at: new Date().toISOString() };
    });
    return value.alreadyDone ? value : { ...value, attempts };
  });
}

/** Cleanup of an attach switchover: nothing to drop (there is no legacy copy); the parent becomes the application's. */
export async function attachCleanup({ pools }: Deps, database: string, tp: TablePlan): Promise<{ state: AttachState; dropped: string[]; left: string[] }> {
  return stage('cleanup', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const state = await attachState(c, tp);
      if (state !== 'cutover' && state !== 'cleaned') {
        throw fail(
          'StateConflict',
          `cleanup of ${tp.schema}.${tp.table}: the table is ${state}, not cut over; nothing to clean up (to undo a switchover that has not cut over, run the rollback workflow)`,
          {
            table: tp.table,
            stage: 'cleanup',
          },
        );
      }
      for (const kind of ['partitioned', 'index'] as const) {
        for (const name of [tp.table, attachOf(tp).keyIndex, attachOf(tp).pkIndex]) {
          if (!name) continue;
          const o = await ownership(c, tp, name, kind);
          if (o.ours) await release(c, o.ours.id);
        }
      }
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'CLEANUP', details: { dropped: [], left: [] } });
      return { state: 'cleaned' as AttachState, dropped: [], left: [] };
    }),
  );
}

/**
 * Before the cutover takes its lock: the cutoff must still be more than CUTOFF_MARGIN_MS away
 * (by the database's clock), or the CHECK would refuse the application's writes before or soon
 * after this cutover; refused (StateConflict), the switchover rolls back and drops the CHECK. A
 * cutover already done is not refused (a retry after its commit).
 */
async function refuseNearCutoff(pool: pg.Pool, tp: TablePlan): Promise<void> {
  const a = attachOf(tp);
  await withClient(pool, async (c) => {
    const state = await attachState(c, tp);
    if (state === 'cutover' || state === 'cleaned') return;
    const now = Number((await c.query(sqlFile('session/clock_ms'))).rows[0].ms);
    const left = cutoffStatus(a, now);
    if (left.leftSeconds * 1000 >= CUTOFF_MARGIN_MS) return;
    const reach = a.aheadDays
      ? `the application writes up to ${a.aheadDays} days ahead, so its writes reach the cutoff at ${left.deadline}`
      : `at ${left.deadline}`;
    throw fail(
      'StateConflict',
      `cutover of ${tp.schema}.${tp.table} refused: the attach cutoff ${a.cutoff} ${left.leftSeconds >= 0 ? `is ${left.left} away` : `has ${left.left}`} (${reach}), ` +
        `less than the ${humanDuration(CUTOFF_MARGIN_MS)} margin: until cutover every write of ${tp.partitionKey} at or after ${a.cutoff} fails the CHECK ${a.check}. ` +
        `Nothing was changed by the cutover; the switchover rolls back (which drops the CHECK). Start again: preflight picks a later cutoff`,
      { table: tp.table, stage: 'cutover', cutoff: a.cutoff, deadline: left.deadline },
    );
  });
}

/**
 * The rollback of an attach switchover, in the rollback's transaction: after cutover the history
 * partition is detached, the rows written since cutover go back into it, the parent (ours) is
 * dropped and the old primary key restored from the kept unique index; before cutover the CHECK
 * and the indexes of ours are dropped. Returns where the table stood.
 */
export async function rollbackAttached(u: UndoContext): Promise<AttachState> {
  const { tx, tp } = u;
  const c = tx.client;
  await lockViews(tx, tp);
  for (const s of sql.lockSql(tp, [tp.table])) await tx.q(s);
  const from = await attachState(c, tp);
  if (from === 'cleaned') {
    throw fail(
      'StateConflict',
      `${tp.schema}.${tp.table} was cleaned up after its switchover; its partitioned table is the application's now. Nothing was changed.`,
      {
        table: tp.table,
        stage: 'rollback',
      },
    );
  }
  if (from === 'missing')
    throw fail('StateConflict', `${tp.schema}.${tp.table} does not exist; rollback cannot tell what to restore. Nothing was changed.`, { table: tp.table });
  if (from === 'cutover') {
    if (!(await relations(c, tp.schema, [attachOf(tp).history])).size) {
      // splitHistory moved the history partition into periods (README "Splitting the history partition").
      throw fail(
        'StateConflict',
        `${tp.schema}.${attachOf(tp).history} is gone: its rows were split into period partitions (splitHistory). Roll the split back first ` +
          `(splitHistory with "mode": "rollback"), then this rollback. Nothing was changed.`,
        { table: tp.table, stage: 'rollback' },
      );
    }
    const undo = undoAfterCutoverSql(tp);
    // The rows written since cutover can only enter the history partition once it is detached, so
    // they move under the lock. Every lock the rest needs is taken first, within the budget: the
    // tables the parent's foreign keys reference (dropping it drops its triggers there), after the
    // table, as writers lock them. From the move on, a statement that would still wait gives way
    // at once (LockedTx.long past the budget): no statement of ours waits on a writer after it.
    for (const fk of (await c.query(sqlFile('catalog/foreign_keys_referencing'), [sql.qname(tp.schema, tp.table)])).rows) {
      await tx.q(lockReferencedSql(fk.ref_schema, fk.ref_table));
    }
    let moved = false;
    const run = (s: string) => (moved || s.startsWith('INSERT') ? tx.long(s) : tx.q(s));
    for (const s of undo.before) {
      await run(s).catch((err) => {
        if ((err as { code?: string }).code !== '23505') throw err;
        // A row written since cutover has an id the history partition holds too (the parent's key includes the partition key).
        throw fail(
          'StateConflict',
          `rollback of ${tp.schema}.${tp.table} refused: a row written since cutover has the same ${tp.primaryKey.join(', ')} as a row of ${attachOf(tp).history} ` +
            `(${(err as { detail?: string }).detail ?? (err as Error).message}); the plain table's primary key cannot hold both. Nothing was changed: ` +
            `delete or re-key one of them, then run the rollback again`,
          { table: tp.table, stage: 'rollback' },
        );
      });
      if (s.startsWith('INSERT')) moved = true;
    }
    await dropIfOurs(c, tp, tp.names.partitioned, 'partitioned', u.left, tx.long);
    for (const s of undo.after) await tx.long(s);
  } else {
    await dropIfOurs(c, tp, tp.names.partitioned, 'partitioned', u.left, tx.q);
    for (const s of undoBeforeCutoverSql(tp)) await tx.q(s);
    // Our indexes, each only if it is the one this switchover built (recorded oid).
    for (const name of [attachOf(tp).keyIndex, attachOf(tp).pkIndex]) {
      if (!name) continue;
      const o = await ownership(c, tp, name, 'index');
      if (o.ours) await tx.q(dropIndexSql(tp.schema, name));
      else if (o.exists) u.left.push(`${tp.schema}.${name}: not built by this switchover (its oid is not recorded); left in place`);
    }
  }
  // Dropped, or (after cutover) the primary key again: no index of ours is left to drop.
  for (const r of (await c.query(sqlFile('bookkeeping/created_of'), [tp.schema, tp.table, 'index'])).rows) await release(c, r.id);
  return from;
}

export const attachActivities = (deps: Deps) => bindDeps(deps, { attachIndexes, attachParent, attachCheck, attachVerify, attachCutover, attachCleanup });
