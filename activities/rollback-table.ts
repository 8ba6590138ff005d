// The rollback of one table: the undos of the stages that ran, newest first, in one short
// transaction under the lock budget (renames back, triggers off, the backup); then, outside the
// table's lock, `<table>_partitioned` is dropped in steps (activities/prepare.ts dropPrepared).
// Which stages ran is read from the database (the table's state); every undo is idempotent (IF
// EXISTS, drops only what this switchover recorded as made), so a rollback run again, or after a
// crash, ends in the same state.
import { withClient } from '../src/db';
import { fail } from '../src/errors';
import type pg from 'pg';
import type { StrategyName, TablePlan } from '../src/types';
import { audit, bindDeps, Deps, stage } from './context';
import { lockedTx, whatOf } from './locks';
import { forgetLogged } from './changed';
import { undoCutover } from './cutover';
import { undoMatviews } from './matview-swap';
import { tableState, type TableState } from './bookkeeping';
import { undoTriggers } from './triggers';
import { dropPrepared } from './prepare';
import { dropKeyTable, undoKeyTable } from './keytable';
import { dropBackup, restoreBackup } from './backup';
import { rollbackAttached } from './attach';
import type { Undo, UndoContext } from './undo';

/** The copy strategy's undos in the locked transaction, newest stage first (prepare's follows outside it). */
const COPY_UNDOS: { stage: string; undo: Undo; ran: (from: TableState) => boolean }[] = [
  { stage: 'matviews', undo: undoMatviews, ran: () => true },
  { stage: 'cutover', undo: undoCutover, ran: (from) => from === 'cutover' },
  { stage: 'triggers', undo: undoTriggers, ran: () => true },
  // After the names are back: the foreign keys on the key table point at the plain table again.
  { stage: 'keys', undo: undoKeyTable, ran: () => true },
];

/**
 * Each strategy's undo: what runs in the short locked transaction (returning where the table
 * stood), and what runs after it, outside the table's lock.
 */
const UNDO: Record<
  StrategyName,
  { locked(u: UndoContext): Promise<TableState>; after?(pool: pg.Pool, tp: TablePlan, left: string[], lockTimeoutMs: number): Promise<void> }
> = {
  copy: {
    async locked(u) {
      const { tp } = u;
      const from = await tableState(u.tx.client, tp);
      if (from === 'cleaned') {
        throw fail(
          'StateConflict',
          `${tp.schema}.${tp.table} was cleaned up after its switchover: ${tp.names.legacy} is gone, ` +
            `so there is no plain table to go back to. The partitioned table holds all data; nothing was changed.`,
          { table: tp.table, stage: 'rollback' },
        );
      }
      if (from === 'missing') {
        throw fail('StateConflict', `${tp.schema}.${tp.table} does not exist; rollback cannot tell what to restore. Nothing was changed.`, { table: tp.table });
      }
      u.from = from;
      for (const s of COPY_UNDOS) if (s.ran(from)) await s.undo(u);
      return from;
    },
    // Nothing writes the partitioned table any more: dropped in steps (activities/prepare.ts).
    async after(pool, tp, left, lockTimeoutMs) {
      await dropPrepared(pool, tp, { left, lockTimeoutMs });
      await dropKeyTable(pool, tp, left, lockTimeoutMs);
    },
  },
  // The attach strategy (activities/attach.ts): its own undo reads the state and does the rest.
  attach: { locked: async (u) => (await rollbackAttached(u)) as TableState },
};

/**
 * Puts the plain table back under its name, from whatever state: after cutover the names are
 * swapped back (`<table>_legacy` holds every write, mirrored); before it the triggers and the
 * partitioned copy are dropped. Optionally restores the rows from the backup table.
 */
export async function rollbackTable({ pools }: Deps, database: string, tp: TablePlan, opts: { restoreBackup: boolean; lockTimeoutMs: number }) {
  return stage('rollback', tp.table, async () => {
    const strategy = tp.attach ? 'attach' : 'copy';
    const undo = UNDO[strategy];
    const pool = pools.get(database);
    const done = await lockedTx(pool, { what: whatOf('rollback', tp.schema, tp.table), lockTimeoutMs: opts.lockTimeoutMs }, async (tx) => {
      const u: UndoContext = { tx, tp, from: 'plain', left: [] };
      return { from: await undo.locked(u), left: u.left };
    });
    const { from, left } = done.value;
    await undo.after?.(pool, tp, left, opts.lockTimeoutMs);
    // The backup's rows go back in batches, outside the table's lock.
    const restoredRows = opts.restoreBackup ? await restoreBackup(pool, tp, opts.lockTimeoutMs) : null;
    await dropBackup(pool, tp, left, opts.lockTimeoutMs);
    const details = { from, restored: restoredRows, left, ...(strategy === 'attach' ? { strategy } : {}) };
    await withClient(pool, (c) => audit(c, { schema: tp.schema, table: tp.table, stage: 'ROLLBACK', details }));
    // Outside the lock: the log can be long.
    await withClient(pool, (c) => forgetLogged(c, tp));
    return { table: tp.table, from, restoredRows, ...(left.length ? { left } : {}) };
  });
}

export const rollbackActivities = (deps: Deps) => bindDeps(deps, { rollbackTable });
