// Issue 12 items 2 and 14: every value the plain table accepts has a partition (back-dated rows
// in `<table>_pmin`, far-future ones in `<table>_pmax`) during the copy and after cutover; the
// maintenance workflow splits `_pmax`; the partitions and the parent are analyzed before cutover.
import { approveSignal } from '../src/shared';
import type { MaintenanceReport } from '../workflows/maintenance';
import type { RollbackReport } from '../workflows/rollback';
import type { SwitchoverReport } from '../workflows/switchover';
import { injectAfter, type Injection } from './failure-helpers';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitForPhase, waitForStatistics, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
const inject = new Map<string, Injection>();

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table events (id bigserial primary key, at timestamptz not null, note text);
    insert into events (at, note) select now() - g * interval '1 day', 'e' || g from generate_series(0, 300) g;
  `);
  w = await startTestWorker({ default: db.url }, undefined, { wrapActivities: injectAfter(inject) });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

const partitionOf = async (table: string, id: string) =>
  (await db.pool.query(`select tableoid::regclass::text as p from ${table} where id = $1`, [id])).rows[0]?.p as string | undefined;

/** The writes a DBA expects to succeed: 30 years back, 20 years ahead, a row moved 200 days back. */
async function oddWrites(tag: string): Promise<{ old: string; future: string; moved: string }> {
  const old = (await db.pool.query(`insert into events (at, note) values (now() - interval '30 years', $1) returning id`, [`old ${tag}`])).rows[0].id;
  const future = (await db.pool.query(`insert into events (at, note) values (now() + interval '20 years', $1) returning id`, [`future ${tag}`])).rows[0].id;
  const moved = (
    await db.pool.query(
      `update events set at = at - interval '200 days', note = $1
       where id = (select id from events where note like 'e%' order by at, id limit 1) returning id`,
      [`moved ${tag}`],
    )
  ).rows[0].id;
  return { old, future, moved };
}

test('back-dated and far-future writes during the copy and after cutover land in _pmin/_pmax; maintenance splits _pmax', async () => {
  const id = uniqueId('cover');
  const during: { ids?: Awaited<ReturnType<typeof oddWrites>>; error?: string } = {};
  inject.set(id, {
    activity: 'copyRange',
    before: true,
    action: async () => {
      try {
        during.ids = await oddWrites('during');
      } catch (err) {
        during.error = (err as Error).message;
      }
    },
  });
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ tables: [{ table: 'events', partitionKey: 'at', interval: 'month' }], batchSize: 50, premake: 3 }],
  });
  const status = await waitForPhase(handle, 'awaiting_approval', 120000);
  expect(during.error).toBeUndefined();
  const ids = during.ids!;
  expect(status.verification?.ok).toBe(true);

  // The plan says where each kind of value goes.
  const plan = (await db.pool.query(`select details from partition_switchover.audit where stage = 'PLAN' and table_name = 'events'`)).rows[0].details;
  expect(plan.partitions[0]).toMatchObject({ suffix: 'pmin', from: 'MINVALUE' });
  expect(plan.partitions[plan.partitions.length - 1]).toMatchObject({ suffix: 'pmax', to: 'MAXVALUE' });
  expect(plan.coverage.join('\n')).toMatch(/every value of at has a partition/);
  expect(await partitionOf('events_partitioned', ids.old)).toBe('events_pmin');
  expect(await partitionOf('events_partitioned', ids.moved)).toBe('events_pmin');
  expect(await partitionOf('events_partitioned', ids.future)).toBe('events_pmax');

  // Item 14: every partition and the parent analyzed before cutover (while approval waits).
  await waitForStatistics(handle);
  const parts = await db.pool.query(
    `select c.relname, s.last_analyze from pg_inherits i join pg_class c on c.oid = i.inhrelid
     join pg_stat_user_tables s on s.relid = c.oid where i.inhparent = 'events_partitioned'::regclass order by 1`,
  );
  expect(parts.rows.length).toBeGreaterThan(10);
  expect(parts.rows.filter((r) => r.last_analyze === null).map((r) => r.relname)).toEqual([]);
  const parentStats = await db.pool.query(`select count(*)::int as n from pg_stats where tablename = 'events_partitioned' and inherited`);
  expect(parentStats.rows[0].n).toBeGreaterThan(0);

  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');

  const after = await oddWrites('after');
  expect(await partitionOf('events', after.old)).toBe('events_pmin');
  expect(await partitionOf('events', after.moved)).toBe('events_pmin');
  expect(await partitionOf('events', after.future)).toBe('events_pmax');
  expect(await tableRows(db.pool, 'events')).toEqual(await tableRows(db.pool, 'events_legacy'));

  // A row 5 months ahead lies beyond the 3 premade months: in _pmax until maintenance makes its month.
  const soon = (
    await db.pool.query(
      `insert into events (at, note) values (date_trunc('month', now() at time zone 'UTC') + interval '5 months 2 days', 'soon') returning id`,
    )
  ).rows[0].id;
  expect(await partitionOf('events', soon)).toBe('events_pmax');
  const m: MaintenanceReport = await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maintain'),
    args: [{ tables: ['events'], premake: 6 }],
  });
  expect(m.tables[0].created).toHaveLength(3);
  expect(m.tables[0].movedFromMax).toBe(1);
  expect(await partitionOf('events', soon)).toMatch(/^events_p\d{6}$/);
  // Maintenance analyzes the parent (and so the partitions it made).
  const made = await db.pool.query(`select relname from pg_stat_user_tables where relname = any($1::text[]) and last_analyze is not null`, [
    m.tables[0].created,
  ]);
  expect(made.rows).toHaveLength(3);
  expect(await partitionOf('events', after.future)).toBe('events_pmax');
  expect(await tableRows(db.pool, 'events')).toEqual(await tableRows(db.pool, 'events_legacy'));
  const bound = await db.pool.query(`select pg_get_expr(relpartbound, oid) as b from pg_class where relname = 'events_pmax'`);
  expect(bound.rows[0].b).toMatch(/TO \(MAXVALUE\)/);
  // Idempotent: again, nothing to do.
  const again: MaintenanceReport = await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maintain'),
    args: [{ tables: ['events'], premake: 6 }],
  });
  expect(again.tables[0].created).toEqual([]);

  // Rollback keeps every row, the odd ones included.
  const rows = await tableRows(db.pool, 'events');
  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: id }],
  });
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect(await tableRows(db.pool, 'events')).toEqual(rows);
  expect(rows.some((r) => r.includes('old after')) && rows.some((r) => r.includes('future during'))).toBe(true);
});
