// The rollback of one table: the undos of the stages that ran, newest first, in one short
// transaction under the lock budget (renames back, triggers off, the backup); then, outside the
// table's lock, `<table>_partitioned` is dropped in steps (activities/prepare.ts dropPrepared).
// Which stages ran is read from the database (the table's state); every undo is idempotent (IF
// EXISTS, drops only what this switchover recorded as made), so a rollback run again, or after a
// crash, ends in the same state.
import { withClient } from '../src/db';
import { fail } from '../src/errors';
import type { TablePlan } from '../src/types';
import { audit, bindDeps, Deps, stage } from './context';
import { lockedTx, whatOf } from './locks';
import { forgetLogged } from './changed';
import { undoCutover } from './cutover';
import { tableState, type TableState } from './state';
import { undoTriggers } from './triggers';
import { dropPrepared } from './prepare';
import { dropBackup, restoreBackup } from './backup';
import { rollbackAttached } from './attach';
import type { Undo, UndoContext } from './undo';

/** The stages' undos in the locked transaction, newest stage first (prepare's follows outside it). */
const UNDOS: { stage: string; undo: Undo; ran: (from: TableState) => boolean }[] = [
  { stage: 'cutover', undo: undoCutover, ran: (from) => from === 'cutover' },
  { stage: 'triggers', undo: undoTriggers, ran: () => true },
];

/**
 * Puts the plain table back under its name, from whatever state: after cutover the names are
 * swapped back (`<table>_legacy` holds every write, mirrored); before it the triggers and the
 * partitioned copy are dropped. Optionally restores the rows from the backup table.
 */
export async function rollbackTable({ pools }: Deps, database: string, tp: TablePlan, opts: { restoreBackup: boolean; lockTimeoutMs: number }) {
  return stage('rollback', tp.table, async () => {
    const what = whatOf('rollback', tp.schema, tp.table);
    const done = await lockedTx(pools.get(database), { what, lockTimeoutMs: opts.lockTimeoutMs }, async (tx) => {
      if (tp.attach) {
        // The attach strategy (activities/attach.ts): its own undo; the backup's follows.
        const u: UndoContext = { tx, tp, from: 'plain', left: [] };
        const from = await rollbackAttached(u);
        return { table: tp.table, from: from as TableState, left: u.left, attach: true };
      }
      const from = await tableState(tx.client, tp);
      if (from === 'cleaned') {
        throw fail('StateConflict', `${tp.schema}.${tp.table} was cleaned up after its switchover: ${tp.names.legacy} is gone, ` +
          `so there is no plain table to go back to. The partitioned table holds all data; nothing was changed.`, { table: tp.table, stage: 'rollback' });
      }
      if (from === 'missing') {
        throw fail('StateConflict', `${tp.schema}.${tp.table} does not exist; rollback cannot tell what to restore. Nothing was changed.`, { table: tp.table });
      }
      const u: UndoContext = { tx, tp, from, left: [] };
      for (const s of UNDOS) if (s.ran(from)) await s.undo(u);
      return { table: tp.table, from, left: u.left, attach: false };
    });
    const r = done.value;
    const pool = pools.get(database);
    // Outside the table's lock: nothing writes the partitioned table any more; the backup's rows go back in batches.
    if (!r.attach) await dropPrepared(pool, tp, { left: r.left, lockTimeoutMs: opts.lockTimeoutMs });
    const restoredRows = opts.restoreBackup ? await restoreBackup(pool, tp, opts.lockTimeoutMs) : null;
    await dropBackup(pool, tp, r.left, opts.lockTimeoutMs);
    const details = { from: r.from, restored: restoredRows, left: r.left, ...(r.attach ? { strategy: 'attach' } : {}) };
    await withClient(pool, (c) => audit(c, { schema: tp.schema, table: tp.table, stage: 'ROLLBACK', details }));
    // Outside the lock: the log can be long.
    await withClient(pool, (c) => forgetLogged(c, tp));
    return { table: r.table, from: r.from, restoredRows, ...(r.left.length ? { left: r.left } : {}) };
  });
}

export const rollbackActivities = (deps: Deps) => bindDeps(deps, { rollbackTable });
