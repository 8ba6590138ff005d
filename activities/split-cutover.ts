// The history split's last stages (README "Splitting the history partition"): the period tables'
// indexes and foreign keys, the cutover in one short transaction under the lock budget, the
// rollback from wherever the split stands, and cleanup. Each reads the database first, so a retry
// or a run after a crash ends in the same state. SQL from src/splitsql.ts.
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import { qname } from '../src/sql';
import { resumeAutovacuumSql } from '../src/sqlgen';
import type { SplitPlan } from '../src/splitplan';
import * as s from '../src/splitsql';
import { dropIndexConcurrentlySql } from '../src/attachsql';
import { audit, bindDeps, Deps, keepAlive, stage } from './context';
import { auditRow, ownership, recordCreated, relations, release } from './bookkeeping';
import { lockedTx } from './locks';
import { analyzeTable } from './maintain-partitions';

export type SplitState = 'none' | 'prepared' | 'cutover' | 'cleaned';

export interface SplitCutoverResult {
  table: string;
  lockMs: number;
  attempts: number;
  alreadyDone: boolean;
  /** Set when the table could not be analyzed after cutover (a lock held too long); maintenance's next run analyzes it. */
  analyzeSkipped?: string;
}

export interface SplitUndoResult {
  table: string;
  /** Where the split stood when the rollback or cleanup began. */
  from: SplitState;
  dropped: string[];
  /** What was left in place, and why. */
  left: string[];
}

/** The plan a split of the table recorded (SPLIT-PLAN), or null when none ever began. */
export async function splitRecordedPlan({ pools }: Deps, database: string, schema: string, table: string): Promise<SplitPlan | null> {
  return stage('split', table, () =>
    withClient(pools.get(database), async (c) => {
      if (!(await c.query(sqlFile('catalog/relation_exists'), ['partition_switchover.audit'])).rows[0].ok) return null;
      return ((await c.query(sqlFile('split/plan'), [schema, table])).rows[0]?.details as SplitPlan) ?? null;
    }),
  );
}

/** Where the split stands: nothing of it, prepared (the history still a partition), cut over (`<table>_history_legacy` there), cleaned up. */
async function splitState(c: pg.ClientBase, p: SplitPlan): Promise<SplitState> {
  const rels = await relations(c, p.schema, [p.names.history, p.names.historyLegacy, p.names.split]);
  if (rels.has(p.names.historyLegacy) && !rels.has(p.names.history)) return 'cutover';
  if (!rels.has(p.names.history)) return 'cleaned';
  const trigger = (await c.query(sqlFile('catalog/trigger_enabled'), [qname(p.schema, p.names.history), p.names.mirrorTrigger])).rows[0];
  const check = (await c.query(sqlFile('catalog/constraint_validated'), [qname(p.schema, p.names.history), p.names.historyCheck])).rows[0];
  return rels.has(p.names.split) || trigger || check || (await ownership(c, p.tp, p.names.keyIndex, 'split-index')).ours ? 'prepared' : 'none';
}

/** The period tables this split recorded that exist now, by name (same oid), with their record ids. */
async function ourPeriods(c: pg.ClientBase, p: SplitPlan): Promise<Map<string, string>> {
  const rows = (await c.query(sqlFile('bookkeeping/created_of'), [p.schema, p.table, 'split-period'])).rows;
  return new Map(rows.filter((r) => r.relname && r.nspname === p.schema).map((r) => [r.relname as string, r.id as string]));
}

/**
 * Each period table's copies of the table's secondary indexes (CONCURRENTLY; an invalid one built
 * again) and foreign keys (NOT VALID, then validated), then its statistics (ANALYZE): without them
 * the planner takes a lookup by primary key in each period for a thousand rows, and a statement
 * over every period (an update by id alone) crosses jit_above_cost (measured at 10M rows: 80 ms
 * per update instead of 3).
 */
export async function splitIndexes(
  { pools }: Deps,
  database: string,
  p: SplitPlan,
  lockTimeoutMs: number,
): Promise<{ table: string; built: number; analyzeSkipped: string[]; ms: number }> {
  return stage('split-index', p.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      let built = 0;
      const analyzeSkipped: string[] = [];
      for (const period of p.periods) {
        for (const [n, i] of p.indexes.entries()) {
          const x = s.periodIndexSql(p, period, i, n);
          const valid = (await c.query(sqlFile('catalog/index_valid'), [p.schema, x.name])).rows[0]?.indisvalid as boolean | undefined;
          if (valid === true) continue;
          if (valid === false) await keepAlive(() => c.query(dropIndexConcurrentlySql(p.schema, x.name)));
          await keepAlive(() => c.query(x.sql), { index: x.name });
          built++;
        }
        for (const fk of p.foreignKeys) {
          const x = s.periodForeignKeySql(p, period, fk);
          const state = (await c.query(sqlFile('catalog/constraint_validated'), [qname(p.schema, period.name), fk.name])).rows[0];
          const what = { what: `foreign key ${fk.name} of ${p.schema}.${period.name}`, lockTimeoutMs };
          if (!state) await lockedTx({ client: c }, what, (tx) => tx.q(x.add));
          if (state?.convalidated !== true) await keepAlive(() => lockedTx({ client: c }, what, (tx) => tx.long(x.validate)));
        }
        const skipped = await keepAlive(() => analyzeTable(c, qname(p.schema, period.name)));
        if (skipped) analyzeSkipped.push(skipped);
        await lockedTx({ client: c }, { what: `autovacuum back on ${p.schema}.${period.name}`, lockTimeoutMs }, (tx) =>
          tx.q(resumeAutovacuumSql(p.tp, p.schema, period.name)),
        );
      }
      return { table: p.table, built, analyzeSkipped, ms: Date.now() - t0 };
    }),
  );
}

/** The cutover: one short transaction under the lock budget, retried with backoff; a retry after it committed returns the recorded one. */
export async function splitCutover({ pools }: Deps, database: string, p: SplitPlan, lockTimeoutMs: number): Promise<SplitCutoverResult> {
  return stage('split-cutover', p.table, async () => {
    const what = `split cutover of ${p.schema}.${p.table}`;
    const { value, attempts } = await lockedTx(pools.get(database), { what, lockTimeoutMs, firstBudgetMs: 200 }, async (tx) => {
      const c = tx.client;
      if ((await splitState(c, p)) === 'cutover') {
        const prior = await auditRow(c, p.schema, p.table, 'SPLIT-CUTOVER');
        return { table: p.table, lockMs: prior?.ms ?? 0, attempts: 0, alreadyDone: true };
      }
      await tx.q(s.splitLockSql(p, [p.names.split]));
      const enabled = (await c.query(sqlFile('catalog/trigger_enabled'), [qname(p.schema, p.names.history), p.names.mirrorTrigger])).rows[0]?.enabled;
      if (enabled !== 'A') {
        throw fail(
          'StateConflict',
          `split cutover of ${p.schema}.${p.table} refused: the mirror trigger ${p.names.mirrorTrigger} on ${p.schema}.${p.names.history} is ` +
            `${enabled ? `not enabled always (${enabled})` : 'gone'}, so the period tables may have missed writes. Nothing was changed; roll the split back and start again`,
          { table: p.table, stage: 'split-cutover' },
        );
      }
      const t1 = process.hrtime.bigint();
      // Every lock is held: the catalog work cannot wait on a writer any more.
      for (const x of s.splitCutoverSql(p)) await tx.long(x);
      const lockMs = Number(process.hrtime.bigint() - t1) / 1e6;
      await recordCreated(c, p.tp, p.names.historyLegacy, 'history-legacy');
      await audit(c, { schema: p.schema, table: p.table, stage: 'SPLIT-CUTOVER', ms: lockMs, details: { lockMs, periods: p.periods.length } });
      return { table: p.table, lockMs, attempts: 1, alreadyDone: false };
    });
    if (value.alreadyDone) return value;
    // After the commit: the parent's own statistics (autovacuum never gathers a partitioned table's) over the new periods.
    const skipped = await withClient(pools.get(database), (c) => keepAlive(() => analyzeTable(c, qname(p.schema, p.table))));
    return { ...value, attempts, ...(skipped ? { analyzeSkipped: skipped } : {}) };
  });
}

/** Rollback after cutover: one short transaction; the periods of ours still attached are detached and dropped, the history attached again. */
async function undoAfterCutover(pool: pg.Pool, p: SplitPlan, lockTimeoutMs: number, out: SplitUndoResult) {
  const legacy = `${p.schema}.${p.names.historyLegacy}`;
  await lockedTx(pool, { what: `split rollback of ${p.schema}.${p.table}`, lockTimeoutMs, firstBudgetMs: 200 }, async (tx) => {
    const c = tx.client;
    const check = (await c.query(sqlFile('catalog/constraint_validated'), [qname(p.schema, p.names.historyLegacy), p.names.historyCheck])).rows[0];
    if (check?.convalidated !== true) {
      throw fail(
        'StateConflict',
        `split rollback of ${p.schema}.${p.table}: ${legacy} lost its CHECK ${p.names.historyCheck}; attaching it would scan it under the lock. Nothing was changed`,
      );
    }
    await tx.q(s.splitLockSql(p, [p.names.historyLegacy]));
    const ours = await ourPeriods(c, p);
    const children = new Set((await c.query(sqlFile('catalog/partitions_of'), [qname(p.schema, p.table)])).rows.map((r) => r.name as string));
    const attached = [...ours.keys()].filter((n) => children.has(n));
    for (const n of ours.keys())
      if (!children.has(n)) out.left.push(`${p.schema}.${n}: no longer a partition of ${p.schema}.${p.table} (retention?); left in place`);
    for (const x of s.rollbackAfterCutoverSql(p, attached)) await tx.long(x);
    for (const n of attached) await release(c, ours.get(n)!);
    out.dropped.push(...attached);
    const legacyRec = (await c.query(sqlFile('bookkeeping/created_of'), [p.schema, p.table, 'history-legacy'])).rows;
    for (const r of legacyRec) await release(c, r.id);
    if ((await ownership(c, p.tp, p.names.keyIndex, 'split-index')).ours) {
      await tx.long(s.dropSplitIndexSql(p));
      out.dropped.push(p.names.keyIndex);
    }
    await audit(c, { schema: p.schema, table: p.table, stage: 'SPLIT-ROLLBACK', details: out });
  });
}

/** Rollback before cutover: the mirror, `<table>_split` with its periods (if ours), the CHECK, then the key index (if ours) CONCURRENTLY. */
async function undoBeforeCutover(pool: pg.Pool, p: SplitPlan, lockTimeoutMs: number, out: SplitUndoResult) {
  await lockedTx(pool, { what: `split rollback of ${p.schema}.${p.table}`, lockTimeoutMs }, async (tx) => {
    const c = tx.client;
    const split = await ownership(c, p.tp, p.names.split, 'split');
    if (split.exists && !split.ours) out.left.push(`${p.schema}.${p.names.split}: not made by a split of this table; left in place`);
    for (const x of s.rollbackBeforeCutoverSql(p, !!split.ours)) await tx.q(x);
    if (split.ours) {
      await release(c, split.ours.id);
      out.dropped.push(p.names.split);
      for (const id of (await ourPeriods(c, p)).values()) await release(c, id);
    }
  });
  await withClient(pool, async (c) => {
    const idx = await ownership(c, p.tp, p.names.keyIndex, 'split-index');
    if (!idx.ours) return;
    await keepAlive(() => c.query(dropIndexConcurrentlySql(p.schema, p.names.keyIndex)));
    await release(c, idx.ours.id);
    out.dropped.push(p.names.keyIndex);
  });
  await withClient(pool, (c) => inTx(c, () => audit(c, { schema: p.schema, table: p.table, stage: 'SPLIT-ROLLBACK', details: out })));
}

/** The split's rollback from wherever it stands (mode "rollback", or a failure before cutover). */
export async function splitRollback({ pools }: Deps, database: string, p: SplitPlan, lockTimeoutMs: number): Promise<SplitUndoResult> {
  return stage('split-rollback', p.table, async () => {
    const pool = pools.get(database);
    const from = await withClient(pool, (c) => splitState(c, p));
    const out: SplitUndoResult = { table: p.table, from, dropped: [], left: [] };
    if (from === 'cleaned') {
      throw fail(
        'StateConflict',
        `split of ${p.schema}.${p.table} was cleaned up: ${p.schema}.${p.names.historyLegacy} is gone and the periods are the application's partitions. Nothing was changed.`,
        { table: p.table },
      );
    }
    if (from === 'cutover') await undoAfterCutover(pool, p, lockTimeoutMs, out);
    else if (from === 'prepared') await undoBeforeCutover(pool, p, lockTimeoutMs, out);
    return out;
  });
}

/** Cleanup after cutover: the reverse mirror dropped, `<table>_history_legacy` dropped (if ours), our records released. */
export async function splitCleanup({ pools }: Deps, database: string, p: SplitPlan, lockTimeoutMs: number): Promise<SplitUndoResult> {
  return stage('split-cleanup', p.table, async () => {
    const pool = pools.get(database);
    const from = await withClient(pool, (c) => splitState(c, p));
    const out: SplitUndoResult = { table: p.table, from, dropped: [], left: [] };
    if (from === 'cleaned') return out;
    if (from !== 'cutover') {
      throw fail(
        'StateConflict',
        `split of ${p.schema}.${p.table} has not cut over (${from}); run it to the end, or roll it back with "mode": "rollback". Nothing was changed.`,
        { table: p.table },
      );
    }
    await lockedTx(pool, { what: `split cleanup of ${p.schema}.${p.table}`, lockTimeoutMs }, async (tx) => {
      const c = tx.client;
      const x = s.splitCleanupSql(p);
      await tx.q(x.triggers);
      const legacy = await ownership(c, p.tp, p.names.historyLegacy, 'history-legacy');
      if (legacy.ours) {
        await tx.q(x.legacy);
        out.dropped.push(p.names.historyLegacy);
      } else if (legacy.exists) out.left.push(`${p.schema}.${p.names.historyLegacy}: not recorded by this split; left in place`);
      for (const kind of ['history-legacy', 'split-period', 'split-index', 'split'] as const) {
        for (const r of (await c.query(sqlFile('bookkeeping/created_of'), [p.schema, p.table, kind])).rows) await release(c, r.id);
      }
      await audit(c, { schema: p.schema, table: p.table, stage: 'SPLIT-CLEANUP', details: out });
    });
    return out;
  });
}

export const splitCutoverActivities = (deps: Deps) => bindDeps(deps, { splitRecordedPlan, splitIndexes, splitCutover, splitRollback, splitCleanup });
