// The fast copy's safety net and its index build, on the real dev server: rows the copy got wrong
// racing a writer (a resurrected delete, a moved row left behind) are repaired by copyRecheck in
// mode "recheck", and the same damage fails verification in mode "lock" (so the repair is what
// fixes it). Secondary indexes end valid, attached on every partition. The throttle's brake
// engages and releases. Small rows, no timing.
import { seed } from '../demo/seed';
import { approveSignal, statusQuery } from '../src/shared';
import type { Activities } from '../activities';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, databasesAndWorker, startTestWorker, tableRows, uniqueId, waitFor, waitForPhase } from './helpers';

const REVENUES = [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }];

/**
 * What a lock-free batch that raced two writers leaves, made on purpose before the copy starts:
 * each writer's change goes through the dual-write trigger (which logs its key), then the stale
 * version the batch read before it is written to revenues_partitioned behind the trigger.
 */
async function damage(database: string) {
  const d = dbs[database];
  const c = await d.pool.connect();
  const cols = `id, organization_id, property_id, occurred_at, amount_cents, currency, category, status, description, created_at, updated_at`;
  try {
    await c.query('begin');
    await c.query(`create temp table stale on commit drop as select ${cols} from revenues where id in (5, 20)`);
    // A delete (the trigger has nothing to delete yet) and a move of the partition key.
    await c.query(`delete from revenues where id = 5`);
    await c.query(`update revenues set occurred_at = occurred_at + interval '35 days' where id = 20`);
    // The batch's insert of the versions it read: the deleted row comes back, the moved one stays behind.
    await c.query('set local session_replication_role = replica');
    await c.query(`insert into revenues_partitioned (${cols}) select ${cols} from stale`);
    await c.query('commit');
  } finally {
    c.release();
  }
}

function wrap(acts: Activities): Activities {
  const damaged = new Set<string>();
  return {
    ...acts,
    copyRange: async (...args) => {
      const [database, tp, s] = args;
      if (tp.table === 'revenues' && s.stream === 0 && !damaged.has(database)) {
        damaged.add(database);
        await damage(database);
      }
      return acts.copyRange(...args);
    },
  };
}

const env = databasesAndWorker(['recheck', 'lock'], (db) => seed(db.pool, { rows: 1500, years: 2 }), { wrapActivities: wrap });
const dbs = env.dbs;

test('mode recheck: the re-check repairs every damaged row; indexes are valid and attached on every partition', async () => {
  const d = dbs.recheck;
  const handle = await env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('recheck'),
    args: [{ tables: REVENUES, database: 'recheck', batchSize: 200, copyMode: 'recheck', backup: 'none' }],
  });
  const status = await waitForPhase(handle, 'awaiting_approval');
  expect(status.verification?.ok).toBe(true);
  expect(status.throttle).toMatchObject({ copyMode: 'recheck', parallelism: 2 });
  expect(await tableRows(d.pool, 'revenues_partitioned', 'id, occurred_at')).toEqual(await tableRows(d.pool, 'revenues', 'id, occurred_at'));

  const idx = await d.pool.query(
    `select c.relname, i.indisvalid, (select count(*)::int from pg_inherits h where h.inhparent = c.oid) as attached
       from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = 'revenues_partitioned'::regclass order by 1`,
  );
  const partitions = (await d.pool.query(`select count(*)::int as n from pg_inherits where inhparent = 'revenues_partitioned'::regclass`)).rows[0].n;
  expect(idx.rows.map((r) => r.relname)).toEqual(['revenues_organization_id_occurred_at_idx_ps', 'revenues_pkey_ps', 'revenues_status_idx_ps']);
  for (const r of idx.rows) expect(r).toMatchObject({ indisvalid: true, attached: partitions });

  await handle.signal(approveSignal, { by: 'test' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  // Only the keys the writers' trigger logged were compared, not the table's 1,500 rows: the
  // deleted row's, the moved row's old and new one.
  expect(report.tables[0].copy.recheck).toMatchObject({ repaired: 2, chunks: 0, keysChecked: 3 });
  expect(report.tables[0].copy.indexes).toMatchObject({ indexes: 2 });
  expect(await tableRows(d.pool, 'revenues', 'id, occurred_at')).toEqual(await tableRows(d.pool, 'revenues_legacy', 'id, occurred_at'));
});

test('mode lock: the same damage is not repaired by the copy, and verification fails naming the rows', async () => {
  const handle = await env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('lock'),
    args: [{ tables: REVENUES, database: 'lock', batchSize: 200, copyMode: 'lock', backup: 'none' }],
  });
  await expect(handle.result()).rejects.toThrow();
  const desc = await handle.describe();
  expect(desc.status.name).toBe('FAILED');
  const history = JSON.stringify((await handle.fetchHistory()).events);
  expect(history).toMatch(/verification failed: revenues differs/);
});

test('the brake: the copy pauses while a session waits for a lock longer than maxLockWaitMs, says so in status, and goes on after', async () => {
  dbs.brake = await createTestDb();
  const d = dbs.brake;
  await seed(d.pool, { rows: 1500, years: 2 });
  const w2 = await startTestWorker({ brake: d.url });
  // An application session waits on another's row lock (on a table the switchover does not touch).
  // One stream: with two, the second holds while the application is at work (writers first) and status shows that.
  const holder = await d.pool.connect();
  const waiter = await d.pool.connect();
  try {
    await holder.query('begin');
    await holder.query(`update expenses set status = 'void' where id = 1`);
    const waiting = waiter.query(`update expenses set status = 'posted' where id = 1`);
    const handle = await w2.client.workflow.start('switchover', {
      taskQueue: w2.taskQueue,
      workflowId: uniqueId('brake'),
      args: [{ tables: REVENUES, database: 'brake', batchSize: 200, backup: 'none', throttle: { maxLockWaitMs: 300, brakePauseMs: 50, parallelism: 1 } }],
    });
    const braking = await waitFor(async () => {
      const s = await handle.query(statusQuery);
      return s.progress.revenues?.brake ? s : undefined;
    }, 'the copy to brake');
    expect(braking.progress.revenues.brake).toMatch(/a session has waited \d+ ms for a lock \(maxLockWaitMs 300\)/);
    expect(braking.phase).toBe('copy');
    await holder.query('commit');
    await waiting;
    const status = await waitForPhase(handle, 'awaiting_approval');
    expect(status.progress.revenues.brake).toBeNull();
    expect(status.progress.revenues.brakes).toBeGreaterThan(0);
    expect(status.verification?.ok).toBe(true);
    await handle.terminate('test done');
  } finally {
    holder.release();
    waiter.release();
    await w2.stop();
  }
});
