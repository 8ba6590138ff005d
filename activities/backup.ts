// Stage backup: `<table>_backup` as a plain copy (forward), counted and checksummed (its check,
// POST-BACKUP); its undo (after the rollback's short transaction, outside the table's lock)
// optionally restores the table's rows from it, then drops it if ours.
import type pg from 'pg';
import { Context } from '@temporalio/activity';
import { sqlFile, withTx } from '../src/db';
import { fail } from '../src/errors';
import { fitName } from '../src/partitions';
import * as sql from '../src/sqlgen';
import {
  backupKeyIndexSql,
  RESTORE_TRIGGER,
  restoreLockSql,
  restoreLoggedSql,
  restoreNextBoundSql,
  restoreRangeSql,
  restoreTriggerOffSql,
  restoreTriggerSql,
} from '../src/restoresql';
import type { StageRecord, TablePlan } from '../src/types';
import { audit, bindDeps, checksum, Deps, keepAlive, stage, throwIfCancelled, workflowId } from './context';
import { lockedTx, type LockedTx, whatOf } from './locks';
import { rowCountSql } from '../src/sqlgen';
import { auditRow, dropIfOurs, ownership, recordCreated } from './bookkeeping';

/** `<table>_backup` as a plain copy, counted and checksummed (POST-BACKUP). */
export async function backupTable({ pools }: Deps, database: string, tp: TablePlan): Promise<StageRecord> {
  return stage('backup', tp.table, () =>
    withTx(pools.get(database), async (c) => {
      const t0 = Date.now();
      // Ours when this run recorded it, or (a reset re-runs this) the same workflow made it.
      const done = await auditRow(c, tp.schema, tp.table, 'POST-BACKUP');
      const o = await ownership(c, tp, tp.names.backup, 'backup');
      const exists = o.exists;
      if (exists && !done && o.ours?.workflowId !== workflowId()) {
        throw fail(
          'StateConflict',
          `backup table ${tp.schema}.${tp.names.backup} already exists and was not made by this switchover; drop or rename it, or start with "backup": "none". Nothing was changed.`,
          { table: tp.table, stage: 'backup' },
        );
      }
      if (!exists) {
        await keepAlive(() => c.query(sql.backupSql(tp)));
        for (const s of sql.backupAccessSql(tp)) await c.query(s);
        await recordCreated(c, tp, tp.names.backup, 'backup');
      }
      const sum = await keepAlive(() => checksum(c, tp, tp.names.backup));
      return audit(c, { schema: tp.schema, table: tp.table, stage: 'POST-BACKUP', checksum: sum, ms: Date.now() - t0 });
    }),
  );
}

export const backupActivities = (deps: Deps) => bindDeps(deps, { backupTable });

const RESTORE_BATCH = 2000;
/** Logged application writes put back under the table's lock at most; more are put back outside it first. */
const LAST_WRITES = 1000;

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (a direct call): nothing to report to.
  }
}

/**
 * Puts the table's rows back to the backup's while the application keeps writing: a trigger logs
 * the keys of the application's writes; the rows go back by key range in short transactions (row
 * locks only, each under the lock budget); the logged keys are put back outside the lock while
 * there are many, and the last of them under the table's lock (SHARE ROW EXCLUSIVE: writers wait,
 * readers do not) within the budget. Then the trigger goes. Returns the backup's row count, or
 * null without a backup of ours. Idempotent: a retry puts back again what is not yet back.
 */
export async function restoreBackup(pool: pg.Pool, tp: TablePlan, lockTimeoutMs: number): Promise<number | null> {
  const t = sql.qname(tp.schema, tp.table);
  const what = (x: string) => ({ what: `restore of ${tp.schema}.${tp.table} from ${tp.names.backup}: ${x}`, lockTimeoutMs });
  const rows = await withTx(pool, async (c) => {
    if (!(await ownership(c, tp, tp.names.backup, 'backup')).ours) return null;
    await c.query(sqlFile('bookkeeping/state_lock'));
    await c.query(sqlFile('bookkeeping/restore_log'));
    await keepAlive(() => c.query(backupKeyIndexSql(tp, fitName(tp.names.backup, '_ps_key'))));
    return Number((await c.query(rowCountSql(tp.schema, tp.names.backup))).rows[0].n);
  });
  if (rows === null) return null;
  await lockedTx(pool, what('log trigger on'), async (tx) => {
    const r = (await tx.client.query(sqlFile('catalog/restore_trigger_ours'), [t, RESTORE_TRIGGER])).rows[0];
    if (r && !r.ours)
      throw fail('StateConflict', `${tp.schema}.${tp.table} has a trigger ${RESTORE_TRIGGER} that is not ours; rename it, then run the rollback again`, {
        table: tp.table,
      });
    if (!r) await tx.q(restoreTriggerSql(tp));
  });
  // Writes of ours are not logged.
  const ours = (tx: LockedTx) => tx.client.query(sqlFile('bookkeeping/restoring_on'));
  const range = restoreRangeSql(tp);
  let lo: string | null = null;
  for (let n = 1; ; n++) {
    throwIfCancelled();
    const hi: string | null = tp.splitColumn ? ((await pool.query(restoreNextBoundSql(tp), [lo, RESTORE_BATCH])).rows[0]?.bound ?? null) : null;
    await lockedTx(pool, what('rows by key range'), async (tx) => {
      await ours(tx);
      // Row locks only: each lock wait within the budget, the statements as long as they take (a
      // table without an integer key to split by goes back in one such transaction).
      await tx.long(range.delete, tp.splitColumn ? [lo, hi] : []);
      await tx.long(range.upsert, tp.splitColumn ? [lo, hi] : []);
    });
    heartbeat({ restoreBatch: n, from: lo });
    if (hi === null) break;
    lo = hi;
  }
  const logged = restoreLoggedSql(tp);
  // Under the table's lock every statement within the budget (q); outside it, row locks only (long).
  const putBack = async (tx: LockedTx, upTo: string, run: LockedTx['q']) => {
    await ours(tx);
    await run(logged.delete, [t, upTo]);
    await run(logged.upsert, [t, upTo]);
    await run(logged.forget, [t, upTo]);
  };
  for (let round = 1; ; round++) {
    throwIfCancelled();
    const log = (await pool.query(sqlFile('bookkeeping/restore_keys_logged'), [t])).rows[0];
    // After 20 rounds writers still outpace us: try the lock anyway (it gives up within the budget, and the activity is retried).
    if (log.n <= LAST_WRITES || round >= 20) {
      const done = await lockedTx(pool, { ...what('the last writes, under the lock'), attempts: 2 }, async (tx) => {
        await tx.q(restoreLockSql(tp));
        const upTo = (await tx.q(sqlFile('bookkeeping/restore_keys_upto'), [t])).rows[0].upto;
        await putBack(tx, upTo, tx.q);
      }).then(
        () => true,
        (err) => {
          // Writers kept it from fitting in the budget: put back what is logged outside the lock, and try again.
          if ((err as { type?: string }).type !== 'LockTimeout' || round >= 20) throw err;
          return false;
        },
      );
      if (done) break;
    }
    await lockedTx(pool, what('writes made meanwhile'), (tx) => putBack(tx, log.upto, tx.long));
    heartbeat({ restoreRound: round, logged: log.n });
  }
  await lockedTx(pool, what('log trigger off'), (tx) => tx.q(restoreTriggerOffSql(tp)));
  await pool.query(sqlFile('bookkeeping/restore_keys_forget'), [t]);
  return rows;
}

/** The backup dropped, if ours (recorded oid). */
export async function dropBackup(pool: pg.Pool, tp: TablePlan, left: string[], lockTimeoutMs: number): Promise<void> {
  await lockedTx(pool, { what: whatOf('drop', tp.schema, tp.names.backup), lockTimeoutMs }, (tx) =>
    dropIfOurs(tx.client, tp, tp.names.backup, 'backup', left, tx.q),
  );
}
