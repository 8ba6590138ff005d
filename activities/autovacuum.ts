// Autovacuum of the copy's partitions: off while the copy fills them (src/sqlgen.ts storageSql,
// made so by prepare), back to the table's own setting once their statistics are gathered, before
// approval. Until then it would vacuum and analyze each partition as the copy fills it: a busy
// backend beside the copy, the lock every index build and validation of that partition waits for
// (ours give up first, under deadlock_timeout, and retry), and statistics gathered again by our
// ANALYZE. Afterwards it vacuums them as usual (their visibility map: index-only scans after cutover).
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { batches } from '../src/partitions';
import { autovacuumOff, qname, resumeAutovacuumSql } from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { lockedTx } from './locks';
import { partitionBatch } from './prepare';

/**
 * Autovacuum back to the table's own setting on each partition of `tp`'s partitioned table that
 * has it off where the table has not, in transactions sized to the lock table as prepare's;
 * returns those partitions. Idempotent (none left: nothing done).
 */
export async function resumeAutovacuum(pool: pg.Pool, tp: TablePlan, lockTimeoutMs?: number): Promise<string[]> {
  const off = autovacuumOff(tp);
  const { paused, batch } = await withClient(pool, async (c) => ({
    paused: (await c.query(sqlFile('catalog/autovacuum_paused'), [qname(tp.schema, tp.names.partitioned), off.table, off.toast])).rows.map(
      (r) => r.name as string,
    ),
    batch: await partitionBatch(c, tp),
  }));
  // SHARE UPDATE EXCLUSIVE on each, which writers pass; a maintenance job holding one is waited for under the lock budget.
  for (const chunk of batches(paused, batch)) {
    await lockedTx(
      pool,
      { what: `autovacuum back on ${chunk.length} partition(s) of ${qname(tp.schema, tp.names.partitioned)}`, lockTimeoutMs },
      async (tx) => {
        for (const name of chunk) await tx.q(resumeAutovacuumSql(tp, tp.schema, name));
      },
    );
  }
  return paused;
}
