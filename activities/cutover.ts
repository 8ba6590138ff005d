// Cutover, cleanup and rollback: the renames that make the partitioned table take the table's
// place, the mirror back to `<table>_legacy`, and their undo. Each inspects the database first,
// so running it again (or after a crash) ends in the same state.
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import * as sql from '../src/sqlgen';
import type { CutoverResult, TablePlan } from '../src/types';
import { audit, Deps, stage } from './context';
import { auditRow, relations } from './prepare';
import { dropIfOurs, ownership, release, recordCreated } from './state';
import { switchoverMetrics } from '../src/metrics';

export type TableState = 'plain' | 'prepared' | 'cutover' | 'cleaned' | 'missing';

/** Where a table stands: plain (nothing of ours), prepared (copy exists), cut over, or cleaned up. */
export async function tableState(c: pg.ClientBase, tp: TablePlan): Promise<TableState> {
  const rels = await relations(c, tp.schema, [tp.table, tp.names.partitioned, tp.names.legacy]);
  const main = rels.get(tp.table);
  if (!main) return 'missing';
  if (main === 'p') return rels.get(tp.names.legacy) === 'r' ? 'cutover' : 'cleaned';
  return rels.get(tp.names.partitioned) === 'p' ? 'prepared' : 'plain';
}

export function cutoverActivities({ pools }: Deps) {
  return {
    async cutoverTable(database: string, tp: TablePlan, lockTimeoutMs: number): Promise<CutoverResult> {
      return stage('cutover', tp.table, async () => {
        const pool = pools.get(database);
        const state = await withClient(pool, (c) => tableState(c, tp));
        if (state === 'cutover' || state === 'cleaned') {
          const prior = await withClient(pool, (c) => auditRow(c, tp.schema, tp.table, 'CUTOVER'));
          return { table: tp.table, lockMs: prior?.ms ?? 0, attempts: 0, alreadyDone: true, at: new Date(prior?.at ?? Date.now()).toISOString() };
        }
        if (state !== 'prepared') {
          throw fail('StateConflict', `cannot cut over ${tp.schema}.${tp.table}: it is ${state}, not prepared (no ${tp.names.partitioned}). Roll back and start again.`, {
            table: tp.table,
            stage: 'cutover',
          });
        }
        try {
          return await withTx(pool, async (c) => {
            for (const s of sql.lockSql(tp, [tp.table, tp.names.partitioned], lockTimeoutMs)) await c.query(s);
            const t1 = process.hrtime.bigint();
            for (const s of sql.cutoverSql(tp)) await c.query(s);
            const lockMs = Number(process.hrtime.bigint() - t1) / 1e6;
            // The legacy table is the application's, but from here on ours to drop at cleanup.
            await recordCreated(c, tp, tp.names.legacy, 'legacy');
            await audit(c, { schema: tp.schema, table: tp.table, stage: 'CUTOVER', ms: lockMs, details: { lockMs } });
            switchoverMetrics({ table: tp.table }).cutoverLock.record(lockMs);
            // COMMIT releases the lock; its duration is counted by the caller's measurement below.
            return { table: tp.table, lockMs, attempts: 1, alreadyDone: false, at: new Date().toISOString() };
          });
        } catch (err) {
          if ((err as { code?: string }).code === '55P03') {
            throw ApplicationFailure.create({
              type: 'LockTimeout',
              message: `cutover of ${tp.schema}.${tp.table} could not take its lock within ${lockTimeoutMs} ms ` +
                `(a long transaction holds the table; see pg_stat_activity). Nothing was changed; retrying with backoff`,
              nonRetryable: false,
            });
          }
          throw err;
        }
      });
    },

    /**
     * Drops the mirror trigger, `<table>_legacy` and the backup of a finished switchover: each only
     * if it is the relation the switchover recorded (same oid); anything else is left and listed.
     */
    async cleanupTable(database: string, tp: TablePlan): Promise<{ state: TableState; dropped: string[]; left: string[] }> {
      return stage('cleanup', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          const state = await tableState(c, tp);
          if (state === 'plain' || state === 'prepared' || state === 'missing') {
            throw fail('StateConflict', `cleanup of ${tp.schema}.${tp.table}: the table is ${state}, not cut over; ` +
              `nothing to clean up (to undo a switchover that has not cut over, run the rollback workflow)`, { table: tp.table, stage: 'cleanup' });
          }
          for (const s of sql.cleanupSql(tp)) await c.query(s);
          const dropped: string[] = [];
          const left: string[] = [];
          for (const [name, kind] of [[tp.names.legacy, 'legacy'], [tp.names.backup, 'backup']] as const) {
            if (await dropIfOurs(c, tp, name, kind, left)) dropped.push(name);
          }
          // The partitioned table is the application's table now.
          const part = await ownership(c, tp, tp.table, 'partitioned');
          if (part.ours) await release(c, part.ours.id);
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'CLEANUP', details: { dropped, left } });
          return { state: 'cleaned' as TableState, dropped, left };
        }),
      );
    },

    /**
     * Puts the plain table back under its name, from whatever state: after cutover the names are
     * swapped back (`<table>_legacy` holds every write, mirrored); before it the triggers and the
     * partitioned copy are dropped. Optionally restores the rows from the backup table.
     */
    async rollbackTable(database: string, tp: TablePlan, opts: { restoreBackup: boolean; lockTimeoutMs: number }) {
      return stage('rollback', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          const before = await tableState(c, tp);
          if (before === 'cleaned') {
            throw fail('StateConflict', `${tp.schema}.${tp.table} was cleaned up after its switchover: ${tp.names.legacy} is gone, ` +
              `so there is no plain table to go back to. The partitioned table holds all data; nothing was changed.`, { table: tp.table, stage: 'rollback' });
          }
          if (before === 'missing') {
            throw fail('StateConflict', `${tp.schema}.${tp.table} does not exist; rollback cannot tell what to restore. Nothing was changed.`, { table: tp.table });
          }
          const statements =
            before === 'cutover'
              ? [...sql.lockSql(tp, [tp.table, tp.names.legacy], opts.lockTimeoutMs), ...sql.rollbackAfterCutoverSql(tp)]
              : sql.rollbackBeforeCutoverSql(tp);
          for (const s of statements) await c.query(s);
          // Dropped only if it is the table this switchover made (recorded oid); anything else under
          // our names is the user's, and stays.
          const left: string[] = [];
          const droppedPartitioned = await dropIfOurs(c, tp, tp.names.partitioned, 'partitioned', left);
          if (before === 'cutover') {
            if (droppedPartitioned) for (const s of sql.rollbackAfterDropSql(tp)) await c.query(s);
            const legacy = await ownership(c, tp, tp.table, 'legacy');
            if (legacy.ours) await release(c, legacy.ours.id);
          }
          let restored: number | null = null;
          const hasBackup = (await ownership(c, tp, tp.names.backup, 'backup')).ours !== null;
          if (opts.restoreBackup && hasBackup) {
            await c.query(`LOCK TABLE ${sql.qname(tp.schema, tp.table)} IN ACCESS EXCLUSIVE MODE`);
            await c.query(`DELETE FROM ${sql.qname(tp.schema, tp.table)}`);
            const cols = tp.insertColumns.map(sql.ident).join(', ');
            const overriding = tp.columns.some((x) => x.identity === 'a') ? ' OVERRIDING SYSTEM VALUE' : '';
            restored = (await c.query(`INSERT INTO ${sql.qname(tp.schema, tp.table)} (${cols})${overriding} SELECT ${cols} FROM ${sql.qname(tp.schema, tp.names.backup)}`)).rowCount;
          }
          await dropIfOurs(c, tp, tp.names.backup, 'backup', left);
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'ROLLBACK', details: { from: before, restored, left } });
          return { table: tp.table, from: before, restoredRows: restored, ...(left.length ? { left } : {}) };
        }),
      );
    },
  };
}
