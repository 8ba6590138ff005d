// The fast copy's safety net and its index build, on the real dev server: rows the copy got wrong
// (a resurrected delete, a stale version, a moved row left behind) are repaired by copyRecheck in
// mode "recheck", and the same damage fails verification in mode "lock" (so the repair is what
// fixes it). Secondary indexes end valid, attached on every partition. Small rows, no timing.
import { seed } from '../src/seed';
import { approveSignal } from '../src/shared';
import type { Activities } from '../activities';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitForPhase, type TestDb, type TestWorker } from './helpers';

const dbs: Record<string, TestDb> = {};
let w: TestWorker;
const REVENUES = [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }];

/** Damage to revenues_partitioned, written before the copy starts and without the triggers. */
async function damage(database: string) {
  const d = dbs[database];
  const c = await d.pool.connect();
  try {
    await c.query('begin');
    await c.query('set local session_replication_role = replica');
    const cols = `id, organization_id, property_id, occurred_at, amount_cents, currency, category, status, description, created_at, updated_at`;
    // A row deleted from the table but present in the copy (what a lock-free batch can resurrect).
    await c.query(`insert into revenues_partitioned (${cols}) select ${cols} from revenues where id = 5`);
    await c.query(`delete from revenues where id = 5`);
    // An older version of a row (the batch read it before a writer changed it).
    await c.query(`insert into revenues_partitioned (${cols}) select id, organization_id, property_id, occurred_at, amount_cents + 1, currency, category, status, description, created_at, updated_at from revenues where id = 10`);
    // The same row under another partition key (a move the batch did not see).
    await c.query(`insert into revenues_partitioned (${cols}) select id, organization_id, property_id, occurred_at + interval '35 days', amount_cents, currency, category, status, description, created_at, updated_at from revenues where id = 20`);
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

beforeAll(async () => {
  for (const name of ['recheck', 'lock']) {
    dbs[name] = await createTestDb();
    await seed(dbs[name].pool, { rows: 1500, years: 2 });
  }
  w = await startTestWorker(Object.fromEntries(Object.entries(dbs).map(([k, d]) => [k, d.url])), undefined, { wrapActivities: wrap });
});
afterAll(async () => {
  await w?.stop();
  for (const d of Object.values(dbs)) await d?.drop();
});

test('mode recheck: the re-check repairs every damaged row; indexes are valid and attached on every partition', async () => {
  const d = dbs.recheck;
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
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
  expect(report.tables[0].copy.recheck).toMatchObject({ repaired: 3 });
  expect(report.tables[0].copy.indexes).toMatchObject({ indexes: 2 });
  expect(await tableRows(d.pool, 'revenues', 'id, occurred_at')).toEqual(await tableRows(d.pool, 'revenues_legacy', 'id, occurred_at'));
});

test('mode lock: the same damage is not repaired by the copy, and verification fails naming the rows', async () => {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('lock'),
    args: [{ tables: REVENUES, database: 'lock', batchSize: 200, copyMode: 'lock', backup: 'none' }],
  });
  await expect(handle.result()).rejects.toThrow();
  const desc = await handle.describe();
  expect(desc.status.name).toBe('FAILED');
  const history = JSON.stringify((await handle.fetchHistory()).events);
  expect(history).toMatch(/verification failed: revenues differs/);
});
