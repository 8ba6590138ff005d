// Partitions keep coming after cutover: premade partitions, the maintenance workflow on a real
// Temporal Schedule, and the documented behaviour beyond the premade range with and without a
// default partition.
import type { ScheduleDescription } from '@temporalio/client';
import { ensureMaintenanceSchedule } from '../bin/schedule-maintenance';
import type { MaintenanceReport } from '../workflows/maintenance';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table bookings (id bigserial primary key, booked_on date not null, note text);
    insert into bookings (booked_on, note) select current_date - g, 'b' || g from generate_series(0, 80) g;
    create table stays (id bigserial primary key, arrives timestamptz not null);
    insert into stays (arrives) select now() - g * interval '1 day' from generate_series(0, 40) g;
  `);
  // The database is also a target under its own name, so the schedule id is unique to this run.
  w = await startTestWorker({ default: db.url, [db.name]: db.url });
  for (const [table, partitionKey, defaultPartition, premake] of [
    ['bookings', 'booked_on', false, 2],
    ['stays', 'arrives', true, 1],
  ] as const) {
    const r: SwitchoverReport = await w.client.workflow.execute('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId(`switch-${table}`),
      args: [{ tables: [{ table, partitionKey, interval: 'month' }], premake, defaultPartition, approval: { required: false } }],
    });
    expect(r.outcome).toBe('done');
  }
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

const monthsAhead = async (n: number) =>
  (await db.pool.query(`select (date_trunc('month', now() at time zone 'UTC') + make_interval(months => $1::int) + interval '3 days')::date::text as d`, [n]))
    .rows[0].d as string;
const partitionOf = async (table: string, id: string) =>
  (await db.pool.query(`select tableoid::regclass::text as p from ${table} where id = $1`, [id])).rows[0]?.p;

test('beyond the premade range: the row lands in <table>_pmax, default partition or not', async () => {
  // bookings: premake 2, so the month 3 ahead has no partition of its own.
  const beyond = await db.pool.query(`insert into bookings (booked_on) values ($1) returning id`, [await monthsAhead(3)]);
  expect(await partitionOf('bookings', beyond.rows[0].id)).toBe('bookings_pmax');
  const inside = await db.pool.query(`insert into bookings (booked_on) values ($1) returning id`, [await monthsAhead(2)]);
  expect(await partitionOf('bookings', inside.rows[0].id)).toMatch(/^bookings_p\d{6}$/);

  const far = await db.pool.query(`insert into stays (arrives) values ($1::date) returning id`, [await monthsAhead(6)]);
  expect(await partitionOf('stays', far.rows[0].id)).toBe('stays_pmax');
  expect(await tableRows(db.pool, 'stays')).toEqual(await tableRows(db.pool, 'stays_legacy'));
});

test('a Temporal Schedule runs maintainPartitions: triggering it makes the next partitions, again makes none', async () => {
  const input = { database: db.name, premake: 4 };
  const { scheduleId, created } = await ensureMaintenanceSchedule(w.client, { input, every: '1h', taskQueue: w.taskQueue });
  expect(scheduleId).toBe(`partition-maintenance-${db.name}`);
  expect(created).toBe(true);
  const schedule = w.client.schedule.getHandle(scheduleId);
  try {
    // Running the script again updates the schedule instead of failing.
    expect((await ensureMaintenanceSchedule(w.client, { input, every: '1h', taskQueue: w.taskQueue })).created).toBe(false);
    const described: ScheduleDescription = await schedule.describe();
    expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'maintainPartitions' });

    await schedule.trigger();
    const action = await waitFor(async () => (await schedule.describe()).info.recentActions[0]?.action, 'the scheduled run');
    const report: MaintenanceReport = await w.client.workflow
      .getHandle(action.workflow.workflowId, undefined, { firstExecutionRunId: action.workflow.firstExecutionRunId })
      .result();
    const bookings = report.tables.find((t) => t.table === 'bookings')!;
    expect(bookings.created).toHaveLength(2); // months 3 and 4 ahead
    expect(report.tables.map((t) => t.table).sort()).toEqual(['bookings', 'stays']);
    const inserted = await db.pool.query(`insert into bookings (booked_on) values ($1) returning id`, [await monthsAhead(4)]);
    expect(await partitionOf('bookings', inserted.rows[0].id)).toBe(bookings.created[1]);
    expect(await tableRows(db.pool, 'bookings')).toEqual(await tableRows(db.pool, 'bookings_legacy'));

    // Idempotent: a second run finds nothing missing.
    const again: MaintenanceReport = await w.client.workflow.execute('maintainPartitions', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId('maintain'),
      args: [input],
    });
    expect(again.tables.map((t) => t.created)).toEqual([[], []]);
  } finally {
    await schedule.delete();
  }
});

test('a partition made for a range the default partition holds rows of takes those rows (mirror untouched)', async () => {
  // As a table switched over before `_pmax` existed: no catch-all range, the default partition
  // takes what no range does (the rows of `_pmax` go there through the parent).
  await db.pool.query(`
    begin;
    create temp table held as select * from stays_pmax;
    alter table stays detach partition stays_pmax;
    drop table stays_pmax;
    -- A move (as maintenance moves rows): dropping the partition took its rows from stays only;
    -- the mirror fires for replica sessions too, so it puts them back into stays_legacy as well.
    delete from stays_legacy where id in (select id from held);
    set local session_replication_role = replica;
    insert into stays select * from held;
    commit;`);
  const far = await db.pool.query(`insert into stays (arrives) values ($1::date) returning id`, [await monthsAhead(7)]);
  expect(await partitionOf('stays', far.rows[0].id)).toBe('stays_default');
  const report: MaintenanceReport = await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maintain'),
    args: [{ database: db.name, tables: ['stays'], premake: 7 }],
  });
  expect(report.tables[0].movedFromDefault).toBe(2); // this row and the one from the first test
  expect(await partitionOf('stays', far.rows[0].id)).toMatch(/^stays_p\d{6}$/);
  expect(await tableRows(db.pool, 'stays')).toEqual(await tableRows(db.pool, 'stays_legacy'));

  const bad = w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maintain'),
    args: [{ database: db.name, tables: ['nope'] }],
  });
  await expect(bad).rejects.toThrow();
});
