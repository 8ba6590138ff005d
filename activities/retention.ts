// Retention (README "Retention: old partitions detached or dropped"): the partitions of a
// switched-over table wholly older than `keep` are detached into the archive schema, or dropped.
// Idempotent: a partition already archived or dropped is no longer a partition of the table; a
// DETACH ... CONCURRENTLY interrupted (left pending, or detached but not yet moved) is finished.
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { fail, retryable } from '../src/errors';
import type { Retention } from '../src/input';
import * as sql from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { anyRowSql, archiveSql, detachConcurrentlySql, dropPartitionSql, finalizeDetachSql, insideKeepSql, keepInterval } from '../src/retentionsql';
import { retentionCandidates, type RetentionCandidate } from '../src/retentionsql';
import { detachSql } from '../src/maintenancesql';
import { audit, bindDeps, Deps, stage } from './context';
import { budgetFor, deadlockTimeoutMs, isLockGiveUp, lockedTx, whatOf } from './locks';

/** One partition retired (or, in a dry run, that would be). */
export interface RetentionAction extends RetentionCandidate {
  action: 'detach' | 'drop';
  /** Its rows (counted when it was retired; in a dry run, now). */
  rows: number;
  /** Where a detached partition went: `archive.bookings_p201901`. */
  archivedAs?: string;
  /** DETACH ... CONCURRENTLY, or a plain DETACH under the lock budget (a default partition, a key table). */
  how: 'concurrently' | 'locked';
}

export interface RetentionResult {
  table: string;
  keep: string;
  /** Start of the day (UTC) before which a partition must end to be retired, YYYY-MM-DD. */
  cutoff: string;
  dryRun: boolean;
  /** Retired by this run (dry run: what it would retire). */
  retired: RetentionAction[];
  /** Old partitions left, each with why. */
  kept: { partition: string; reason: string }[];
  /** Interrupted detaches of an earlier attempt finished by this one. */
  finished: string[];
}

interface RetentionOpts {
  retention: Retention;
  dryRun: boolean;
  lockTimeoutMs: number;
}

/** A partition left, with the reason; thrown inside a transaction to roll it back. */
class Kept extends Error {}

const parentOf = (tp: TablePlan) => sql.qname(tp.schema, tp.table);
const stageOf = (a: { action: string }, partition: string) => `RETENTION-${a.action.toUpperCase()} ${partition}`;

/** Why `c` stays, or null: a row inside keep (checked), rows whose keys the key table holds, its name taken in the archive. */
async function keptReason(c: pg.ClientBase, tp: TablePlan, r: Retention, cand: RetentionCandidate, cutoff: string, archiveTaken: boolean) {
  if ((await c.query(insideKeepSql(tp, cand.partition, cutoff))).rows[0].inside) {
    return `holds a row dated on or after the cutoff ${cutoff} (inside keep "${r.keep}"); left`;
  }
  if (tp.keyTable && (await c.query(anyRowSql(tp, cand.partition))).rows[0].any) {
    return (
      `holds rows whose keys ${tp.schema}.${tp.keyTable.table} carries for the foreign keys into ${tp.schema}.${tp.table}; retiring it would leave ` +
      `those keys behind. Delete its rows through the table first (DELETE FROM ${parentOf(tp)} WHERE ${sql.ident(tp.partitionKey)} < ` +
      `${sql.boundLiteral(cand.to, tp.keyType)}: the foreign keys' ON DELETE actions apply), then the next run retires it empty`
    );
  }
  if (r.action === 'detach' && archiveTaken) {
    return `${r.archiveSchema}.${cand.partition} already exists; rename or drop it, then the next run archives ${tp.schema}.${cand.partition}`;
  }
  return null;
}

async function archiveTaken(c: pg.ClientBase, r: Retention, name: string): Promise<boolean> {
  return (await c.query(sqlFile('catalog/relation_in_schema'), [r.archiveSchema, name])).rows[0].taken;
}

async function rowCount(c: pg.ClientBase, tp: TablePlan, name: string): Promise<number> {
  return Number((await c.query(sql.rowCountSql(tp.schema, name))).rows[0].n);
}

/** The detached table `name` (in the table's schema) archived or dropped, and the audit row, in the caller's transaction. */
async function finishDetached(c: pg.ClientBase, tp: TablePlan, r: Retention, a: RetentionAction) {
  if (a.action === 'drop') await c.query(dropPartitionSql(tp, a.partition));
  else await c.query(archiveSql(tp.schema, a.partition, r.archiveSchema));
  await audit(c, { schema: tp.schema, table: tp.table, stage: stageOf(a, a.partition), details: { ...a, status: 'done', keep: r.keep } });
}

/** Retired in one transaction under the lock budget: DETACH (parent locked), the checks again under that lock, then archive or drop. */
async function retireLocked(pool: pg.Pool, tp: TablePlan, r: Retention, cand: RetentionCandidate, cutoff: string, lockTimeoutMs: number) {
  const { value } = await lockedTx(pool, { what: whatOf('retention', tp.schema, cand.partition), lockTimeoutMs }, async (tx) => {
    await tx.q(detachSql(tp, cand.partition));
    // Under the lock nothing writes the partition: what the checks see is what is retired.
    const reason = await keptReason(tx.client, tp, r, cand, cutoff, await archiveTaken(tx.client, r, cand.partition));
    if (reason) throw new Kept(reason);
    const a: RetentionAction = { ...cand, action: r.action, rows: await rowCount(tx.client, tp, cand.partition), how: 'locked' };
    if (r.action === 'detach') a.archivedAs = `${r.archiveSchema}.${cand.partition}`;
    await finishDetached(tx.client, tp, r, a);
    return a;
  });
  return value;
}

/** DETACH ... CONCURRENTLY (or FINALIZE of one left pending) under a session lock_timeout of the budget; needs a connection outside any transaction. */
async function detachConcurrently(c: pg.ClientBase, tp: TablePlan, name: string, lockTimeoutMs: number, finalize = false) {
  const budget = budgetFor(lockTimeoutMs, await deadlockTimeoutMs(c));
  const { previous } = (await c.query(sqlFile('session/lock_timeout_session'), [`${budget}ms`])).rows[0];
  try {
    await c.query(finalize ? finalizeDetachSql(tp, name) : detachConcurrentlySql(tp, name));
  } catch (err) {
    if (!isLockGiveUp(err)) throw err;
    throw retryable(
      'LockTimeout',
      `retention of ${tp.schema}.${name}: DETACH PARTITION ... CONCURRENTLY could not take its lock or wait out older transactions within ${budget} ms; ` +
        `retrying with backoff (a pending detach is finished by the next try)`,
      err,
    );
  } finally {
    await c.query(sqlFile('session/lock_timeout_session'), [previous]);
  }
}

/**
 * Retired without locking out writers: the checks, an audit row saying the detach began
 * (`status: detaching`, what a retry finds), DETACH ... CONCURRENTLY, then archive or drop.
 */
async function retireConcurrently(pool: pg.Pool, tp: TablePlan, r: Retention, cand: RetentionCandidate, cutoff: string, lockTimeoutMs: number) {
  return withClient(pool, async (c) => {
    const reason = await keptReason(c, tp, r, cand, cutoff, await archiveTaken(c, r, cand.partition));
    if (reason) throw new Kept(reason);
    const a: RetentionAction = { ...cand, action: r.action, rows: await rowCount(c, tp, cand.partition), how: 'concurrently' };
    if (r.action === 'detach') a.archivedAs = `${r.archiveSchema}.${cand.partition}`;
    const details = { ...a, status: 'detaching', keep: r.keep, archiveSchema: r.archiveSchema };
    await inTx(c, () => audit(c, { schema: tp.schema, table: tp.table, stage: stageOf(a, a.partition), details }));
    await detachConcurrently(c, tp, cand.partition, lockTimeoutMs);
    // Detached: nothing can write a row into it through the table any more.
    await inTx(c, () => finishDetached(c, tp, r, a));
    return a;
  });
}

/**
 * Finishes what an earlier attempt left: a DETACH ... CONCURRENTLY left pending is finalized, and
 * a table it detached but did not archive or drop (audit status `detaching`, still a plain table
 * in the table's schema) is archived or dropped as that attempt meant to.
 */
async function finishInterrupted(pool: pg.Pool, tp: TablePlan, r: Retention, lockTimeoutMs: number): Promise<string[]> {
  return withClient(pool, async (c) => {
    const finished: string[] = [];
    const children = (await c.query(sqlFile('catalog/partition_bounds'), [parentOf(tp)])).rows;
    for (const p of children.filter((x) => x.pending)) await detachConcurrently(c, tp, p.name, lockTimeoutMs, true);
    for (const row of (await c.query(sqlFile('bookkeeping/retention_detaching'), [tp.schema, tp.table])).rows) {
      if (!(await c.query(sqlFile('catalog/relation_in_schema'), [tp.schema, row.partition])).rows[0].plain) continue;
      const started = { action: row.action, archiveSchema: row.archive_schema ?? r.archiveSchema };
      if (started.action === 'detach' && (await archiveTaken(c, { ...r, ...started }, row.partition))) {
        throw fail(
          'StateConflict',
          `retention of ${tp.schema}.${tp.table}: ${started.archiveSchema}.${row.partition} already exists, so the detached ${tp.schema}.${row.partition} cannot be archived; rename one of them, then run again`,
        );
      }
      const rows = await rowCount(c, tp, row.partition);
      const a = {
        partition: row.partition,
        from: row.from,
        to: row.to,
        action: started.action,
        rows,
        how: 'concurrently' as const,
        archivedAs: `${started.archiveSchema}.${row.partition}`,
      };
      await inTx(c, () => finishDetached(c, tp, { ...r, action: started.action, archiveSchema: started.archiveSchema }, a));
      finished.push(row.partition);
    }
    return finished;
  });
}

/** The cutoff, the old partitions, and whether a default partition rules out DETACH ... CONCURRENTLY. */
async function plan(c: pg.ClientBase, tp: TablePlan, r: Retention) {
  if (r.action === 'detach' && !(await c.query(sqlFile('catalog/schema_exists'), [r.archiveSchema])).rows[0].ok) {
    throw fail(
      'StateConflict',
      `retention of ${tp.schema}.${tp.table}: the archive schema "${r.archiveSchema}" does not exist. Create it as you want archived data owned and ` +
        `readable (CREATE SCHEMA ${sql.ident(r.archiveSchema)};), or set retention.archiveSchema, or "action": "drop". Retention changed nothing.`,
      { archiveSchema: r.archiveSchema },
    );
  }
  return inTx(c, async () => {
    await c.query(sqlFile('session/utc'));
    const cutoff = (await c.query(sqlFile('catalog/retention_cutoff'), [keepInterval(r.keep)])).rows[0].cutoff as string;
    const children = (await c.query(sqlFile('catalog/partition_bounds'), [parentOf(tp)])).rows;
    const hasDefault = children.some((x) => x.bound === 'DEFAULT');
    return { cutoff, hasDefault, ...retentionCandidates(tp, children, cutoff) };
  });
}

/** Retention of one switched-over table: its partitions wholly older than `keep` detached into the archive schema or dropped, each audited. */
export async function applyRetention({ pools }: Deps, database: string, tp: TablePlan, opts: RetentionOpts): Promise<RetentionResult> {
  const r = opts.retention;
  const pool = pools.get(database);
  return stage('retention', tp.table, async () => {
    const finished = opts.dryRun ? [] : await finishInterrupted(pool, tp, r, opts.lockTimeoutMs);
    const p = await withClient(pool, (c) => plan(c, tp, r));
    const result: RetentionResult = { table: tp.table, keep: r.keep, cutoff: p.cutoff, dryRun: opts.dryRun, retired: [], kept: [...p.kept], finished };
    // DETACH ... CONCURRENTLY fails with a default partition (PostgreSQL); a key table's keys go in the detach's transaction.
    const how = p.hasDefault || tp.keyTable ? 'locked' : 'concurrently';
    if (p.straddling) result.kept.push(await straddlingReason(pool, tp, p.straddling, p.cutoff));
    for (const cand of p.retire) {
      try {
        if (opts.dryRun) result.retired.push(await dryRunOne(pool, tp, r, cand, p.cutoff, how));
        else if (how === 'locked') result.retired.push(await retireLocked(pool, tp, r, cand, p.cutoff, opts.lockTimeoutMs));
        else result.retired.push(await retireConcurrently(pool, tp, r, cand, p.cutoff, opts.lockTimeoutMs));
      } catch (err) {
        if (!(err instanceof Kept)) throw err;
        result.kept.push({ partition: cand.partition, reason: err.message });
      }
    }
    return result;
  });
}

/** Why the partition the cutoff falls inside stays: its range reaches past the cutoff (and whether a row inside keep was found). */
async function straddlingReason(pool: pg.Pool, tp: TablePlan, s: RetentionCandidate, cutoff: string) {
  const inside = (await pool.query(insideKeepSql(tp, s.partition, cutoff))).rows[0].inside;
  return {
    partition: s.partition,
    reason:
      `${s.from}..${s.to} reaches past the cutoff ${cutoff}` +
      `${inside ? ' and holds rows dated on or after it (inside keep)' : ''}; retired once it ends on or before the cutoff`,
  };
}

/** What a dry run reports for one candidate: the same checks, nothing changed. */
async function dryRunOne(pool: pg.Pool, tp: TablePlan, r: Retention, cand: RetentionCandidate, cutoff: string, how: RetentionAction['how']) {
  return withClient(pool, async (c) => {
    const reason = await keptReason(c, tp, r, cand, cutoff, await archiveTaken(c, r, cand.partition));
    if (reason) throw new Kept(reason);
    const a: RetentionAction = { ...cand, action: r.action, rows: await rowCount(c, tp, cand.partition), how };
    if (r.action === 'detach') a.archivedAs = `${r.archiveSchema}.${cand.partition}`;
    return a;
  });
}

export const retentionActivities = (deps: Deps) => bindDeps(deps, { applyRetention });
