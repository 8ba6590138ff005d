// Statistics of the partitioned table before cutover, gathered in parallel. ANALYZE of a
// partitioned parent (PostgreSQL before 18 has no ANALYZE ONLY) analyzes each partition, one after
// the other, then samples them all again for the parent's own statistics. Here `parallelism`
// sessions each lock a share of the partitions (SHARE UPDATE EXCLUSIVE, what ANALYZE takes;
// writers pass it) and analyze them inside their open transaction, while one more session runs
// ANALYZE (SKIP_LOCKED) of the parent: every partition is then held by a session of ours, so that
// pass gathers only the parent's statistics. Autovacuum workers on the tree are cancelled first
// (one would hold a partition). A lock not had within the budget: the one plain ANALYZE of the
// parent, retried as before (maintain-partitions.ts).
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { analyzeSkipLockedSql, analyzeSql, lockForAnalyzeSql } from '../src/maintenancesql';
import { qname } from '../src/sqlgen';
import { analyzeTable } from './maintain-partitions';

/** At most this many sessions analyze partitions (one more gathers the parent's statistics). */
export const MAX_ANALYZE_SESSIONS = 4;

const lockTimeout = (err: unknown) => (err as { code?: string }).code === '55P03';

/** Partitions dealt round robin to `k` sessions (every partition in exactly one share). */
export function shares<T>(parts: T[], k: number): T[][] {
  return Array.from({ length: k }, (_, i) => parts.filter((_, j) => j % k === i));
}

/**
 * ANALYZE of partitioned table `schema.name`, its partitions in up to `parallelism` sessions.
 * Returns null, or why the statistics were skipped (a lock held too long), as analyzeTable does.
 */
export async function analyzePartitioned(pool: pg.Pool, schema: string, name: string, parallelism: number): Promise<string | null> {
  const table = qname(schema, name);
  return withClient(pool, async (c) => {
    // Without the right to signal them (not superuser), nothing is cancelled: the lock waits.
    await c.query(sqlFile('catalog/cancel_autovacuum'), [[table]]).catch(() => undefined);
    const parts = (await c.query(sqlFile('catalog/partition_names'), [table])).rows.map((r) => qname(schema, r.name as string));
    // Sessions beside the one held, within the pool (a wait for a client only this call would free never ends).
    const k = Math.min(Math.max(1, parallelism), MAX_ANALYZE_SESSIONS, (pool.options.max ?? 10) - 1, parts.length);
    if (k === 0) return analyzeTable(c, table);
    const sessions: pg.PoolClient[] = [];
    try {
      for (let i = 0; i < k; i++) sessions.push(await pool.connect());
      const done = await analyzeShares(c, table, sessions, shares(parts, k));
      sessions.splice(0).forEach((s) => s.release());
      return done ? null : analyzeTable(c, table);
    } finally {
      // Only after a failure: a session's transaction may be open; the client is discarded.
      for (const s of sessions) {
        await s.query('ROLLBACK').catch(() => undefined);
        s.release(true);
      }
    }
  });
}

/** false: a lock was not had within the budget (nothing is kept: every transaction rolled back). */
async function analyzeShares(c: pg.ClientBase, table: string, sessions: pg.ClientBase[], split: string[][]): Promise<boolean> {
  try {
    for (const [i, s] of sessions.entries()) {
      await s.query('BEGIN');
      await s.query(sqlFile('session/analyze_lock_timeout'));
      await s.query(lockForAnalyzeSql(split[i]));
    }
    const parent = inTx(c, async () => {
      await c.query(sqlFile('session/analyze_lock_timeout'));
      await c.query(lockForAnalyzeSql([table], true));
      await c.query(analyzeSkipLockedSql(table));
    });
    const own = sessions.map(async (s, i) => {
      for (const p of split[i]) await s.query(analyzeSql(p));
    });
    // Every statement settled before the sessions are reused or discarded.
    const failed = (await Promise.allSettled([parent, ...own])).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    if (!lockTimeout(err)) throw err;
    await Promise.all(sessions.map((s) => s.query('ROLLBACK')));
    return false;
  }
  await Promise.all(sessions.map((s) => s.query('COMMIT')));
  return true;
}
