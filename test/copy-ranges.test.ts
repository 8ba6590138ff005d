// The range copy past its boundaries, on the real dev server: keys with gaps wider than a batch
// (the next key is looked up), the top of bigint, and whole batches the dual-write trigger wrote
// before the copy reached them (the batch inserts nothing, the stream goes on), in both copy
// modes; every row equal to the legacy table's at approval and after cutover.
import type { Activities } from '../activities';
import { approveSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { databasesAndWorker, tableRows, uniqueId, waitForPhase } from './helpers';

/** Before the first batch: 50 keys (two whole batches of 25) updated, so the trigger wrote them first. */
function wrap(acts: Activities): Activities {
  const touched = new Set<string>();
  return {
    ...acts,
    copyRange: async (...args) => {
      const [database] = args;
      if (!touched.has(database)) {
        touched.add(database);
        await dbs[database].pool.query(`update sparse set v = v || '!' where id between 26 and 75`);
      }
      return acts.copyRange(...args);
    },
  };
}

const env = databasesAndWorker(
  ['recheck', 'lock'],
  async (db) => {
    await db.pool.query(`
    create table sparse (id bigint primary key, at timestamptz not null, v text not null);
    insert into sparse select g, '2024-01-01'::timestamptz + (g % 90) * interval '1 day', 'a' || g from generate_series(1, 120) g;
    insert into sparse select g, '2024-02-01'::timestamptz + (g % 20) * interval '1 day', 'b' || g from generate_series(10000, 10050) g;
    insert into sparse select 9223372036854775807 - g, '2024-03-01', 'c' || g from generate_series(0, 30) g;
  `);
  },
  { wrapActivities: wrap },
);
const dbs = env.dbs;

test.each(['recheck', 'lock'] as const)(
  'mode %s: gaps wider than a batch, the top of bigint, batches the trigger filled: every row copied once',
  async (mode) => {
    const d = dbs[mode];
    const handle = await env.w.client.workflow.start('switchover', {
      taskQueue: env.w.taskQueue,
      workflowId: uniqueId(`ranges-${mode}`),
      args: [{ tables: [{ table: 'sparse', partitionKey: 'at', interval: 'month' }], database: mode, batchSize: 25, copyMode: mode, backup: 'none' }],
    });
    const status = await waitForPhase(handle, 'awaiting_approval');
    expect(status.verification?.ok).toBe(true);
    const rows = await tableRows(d.pool, 'sparse', 'id');
    expect(rows).toHaveLength(202);
    expect(await tableRows(d.pool, 'sparse_partitioned', 'id')).toEqual(rows);
    await handle.signal(approveSignal, { by: 'test' });
    const report: SwitchoverReport = await handle.result();
    expect(report.outcome).toBe('done');
    // What the copy inserted: every row but the 50 the trigger wrote first.
    expect(report.tables[0].copy.rows).toBe(202 - 50);
    expect(await tableRows(d.pool, 'sparse', 'id')).toEqual(await tableRows(d.pool, 'sparse_legacy', 'id'));
    expect((await d.pool.query(`select count(*)::int as n from sparse where v like '%!'`)).rows[0].n).toBe(50);
  },
);
