// Stage triggers: the dual-write trigger from the table to `<table>_partitioned` (forward),
// checked enabled (its check, TRIGGERS); its undo drops the trigger, its function and the
// TRUNCATE guard.
import { sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import * as sql from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import { audit, bindDeps, Deps, stage } from './context';
import { lockedTx } from './locks';
import { relations } from './bookkeeping';
import type { UndoContext } from './undo';

/** Installs (or upgrades: CREATE OR REPLACE) the dual-write trigger, then checks it is enabled. */
export async function installTriggers({ pools }: Deps, database: string, tp: TablePlan): Promise<{ trigger: string; enabled: boolean }> {
  return stage('triggers', tp.table, async () => {
    // First, in a transaction of its own: the trigger's target must be there, or every write to
    // the live table would fail until something notices.
    await withClient(pools.get(database), async (c) => {
      const target = (await relations(c, tp.schema, [tp.names.partitioned])).get(tp.names.partitioned);
      if (target !== 'p') {
        throw fail(
          'StateConflict',
          `dual-write trigger not installed on ${tp.schema}.${tp.table}: its target ${tp.schema}.${tp.names.partitioned} ` +
            `${target ? `is not a partitioned table (relkind ${target})` : 'does not exist'}. Nothing was changed; ` +
            `roll back this switchover and start again.`,
          { table: tp.table, stage: 'triggers' },
        );
      }
    });
    // CREATE TRIGGER takes SHARE ROW EXCLUSIVE on the live table: under the lock budget, retried.
    const done = await lockedTx(pools.get(database), { what: `trigger install on ${tp.schema}.${tp.table}` }, async (tx) => {
      const c = tx.client;
      for (const statement of sql.dualWriteSql(tp)) await tx.q(statement);
      const row = (await c.query(sqlFile('catalog/trigger_enabled'), [sql.qname(tp.schema, tp.table), tp.names.syncTrigger])).rows[0];
      if (!row || row.enabled !== 'A') {
        throw fail(
          'StateConflict',
          `dual-write trigger ${tp.names.syncTrigger} on ${tp.schema}.${tp.table} is not enabled always (tgenabled=${row?.enabled}); ` +
            `check ALTER TABLE ... ENABLE ALWAYS TRIGGER`,
          { table: tp.table, stage: 'triggers' },
        );
      }
      // The trigger as installed, in this transaction: one disabled and enabled again later is another row version.
      if (tp.changeLog) await c.query(sqlFile('bookkeeping/sync_baseline_record'), [sql.qname(tp.schema, tp.table), tp.names.syncTrigger]);
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'TRIGGERS', details: { trigger: tp.names.syncTrigger, enabled: true } });
      return { trigger: tp.names.syncTrigger, enabled: true };
    });
    return done.value;
  });
}

export const triggerActivities = (deps: Deps) => bindDeps(deps, { installTriggers });

export async function undoTriggers(u: UndoContext): Promise<void> {
  for (const s of sql.undoTriggersSql(u.tp)) await u.tx.q(s);
}
