// Stage prepare: `<table>_partitioned` with its partitions, keys, constraints, grants and comment
// (forward), in one transaction with its audit row (its check, PREPARED), so a retry finds it
// done; its undo drops the table if it is the one this switchover made.
import { withTx } from '../src/db';
import { fail } from '../src/errors';
import { carryRollbackSql } from '../src/carry';
import { prepareSql } from './preflight';
import type { TablePlan } from '../src/types';
import { audit, Deps, stage, workflowId } from './context';
import { auditRow, dropIfOurs, ownership, recordCreated } from './state';
import type { UndoContext } from './undo';

export function prepareActivities({ pools }: Deps) {
  return {
    /** Creates `<table>_partitioned` with its partitions, keys, indexes, FKs, grants and comment. */
    async prepareTable(database: string, tp: TablePlan): Promise<{ partitions: number; ms: number }> {
      return stage('prepare', tp.table, () =>
        withTx(pools.get(database), async (c) => {
          const t0 = Date.now();
          // Done when this run recorded PREPARED, or (a reset re-runs this) the table under the name is
          // the one this workflow made. A PREPARED of an earlier run under the same id is not: its
          // table was dropped by that run's rollback.
          const done = await auditRow(c, tp.schema, tp.table, 'PREPARED');
          if (done) return { partitions: done.details.partitions, ms: done.ms };
          const o = await ownership(c, tp, tp.names.partitioned, 'partitioned');
          if (o.ours?.workflowId === workflowId()) {
            return { partitions: tp.partitions.length + (tp.defaultPartition ? 1 : 0), ms: 0 };
          }
          if (o.exists) {
            throw fail(
              'StateConflict',
              `${tp.schema}.${tp.names.partitioned} already exists and was not made by this switchover; ` +
                `roll back the switchover that made it, or drop it. Nothing was changed.`,
              { table: tp.table, stage: 'prepare' },
            );
          }
          for (const statement of prepareSql(tp)) await c.query(statement);
          await recordCreated(c, tp, tp.names.partitioned, 'partitioned');
          const partitions = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
          await audit(c, { schema: tp.schema, table: tp.table, stage: 'PREPARED', ms: Date.now() - t0, details: { partitions } });
          return { partitions, ms: Date.now() - t0 };
        }),
      );
    },
  };
}

/**
 * Drops `<table>_partitioned` only if it is the table this switchover made (recorded oid);
 * anything else under the name is the user's, and stays. After a cutover, the identity
 * sequences take their names back once the copy's are gone with it.
 */
export async function undoPrepare(u: UndoContext): Promise<void> {
  const { tx, tp } = u;
  const dropped = await dropIfOurs(tx.client, tp, tp.names.partitioned, 'partitioned', u.left, tx.q);
  if (dropped && u.from === 'cutover') for (const s of carryRollbackSql(tp).afterDrop) await tx.q(s);
}
