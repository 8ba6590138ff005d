// Stage backup: `<table>_backup` as a plain copy (forward), counted and checksummed (its check,
// POST-BACKUP); its undo optionally restores the table's rows from it, then drops it if ours.
import { withTx } from '../src/db';
import { fail } from '../src/errors';
import * as sql from '../src/sqlgen';
import type { StageRecord, TablePlan } from '../src/types';
import { audit, checksum, Deps, keepAlive, stage, workflowId } from './context';
import { auditRow, dropIfOurs, ownership, recordCreated } from './state';
import type { UndoContext } from './undo';

export function backupActivities({ pools }: Deps) {
  return {
    /** `<table>_backup` as a plain copy, counted and checksummed (POST-BACKUP). */
    async backupTable(database: string, tp: TablePlan): Promise<StageRecord> {
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
              `backup table ${tp.schema}.${tp.names.backup} already exists and was not made by this switchover; ` +
                `drop or rename it, or start with "backup": "none". Nothing was changed.`,
              { table: tp.table, stage: 'backup' },
            );
          }
          if (!exists) {
            await keepAlive(() => c.query(sql.backupSql(tp)));
            await recordCreated(c, tp, tp.names.backup, 'backup');
          }
          const sum = await keepAlive(() => checksum(c, tp, tp.names.backup));
          return audit(c, { schema: tp.schema, table: tp.table, stage: 'POST-BACKUP', checksum: sum, ms: Date.now() - t0 });
        }),
      );
    },
  };
}

/** Restores the rows from the backup (when asked and the backup is ours), then drops it if ours. */
export async function undoBackup(u: UndoContext): Promise<void> {
  const { tx, tp } = u;
  const hasBackup = (await ownership(tx.client, tp, tp.names.backup, 'backup')).ours !== null;
  if (u.restoreBackup && hasBackup) {
    await tx.q(`LOCK TABLE ${sql.qname(tp.schema, tp.table)} IN ACCESS EXCLUSIVE MODE`);
    // Data movement, once the lock is held: no statement limit.
    await tx.long(`DELETE FROM ${sql.qname(tp.schema, tp.table)}`);
    const cols = tp.insertColumns.map(sql.ident).join(', ');
    const overriding = tp.columns.some((x) => x.identity === 'a') ? ' OVERRIDING SYSTEM VALUE' : '';
    u.restored = (await tx.long(`INSERT INTO ${sql.qname(tp.schema, tp.table)} (${cols})${overriding} SELECT ${cols} FROM ${sql.qname(tp.schema, tp.names.backup)}`)).rowCount;
  }
  await dropIfOurs(tx.client, tp, tp.names.backup, 'backup', u.left, tx.q);
}
