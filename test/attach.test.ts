// The attach strategy (issue 17) on real PostgreSQL and the dev server: the table itself becomes
// the history partition under a live writer (inserts, updates, key moves within and across the
// cutoff, deletes) with no failed write and every committed row; its storage is unchanged; new
// periods land in their own partitions; maintenance works with the one history partition; the
// rollback after cutover keeps the writes made since; a reject drops only what was added; every
// refusal; the dry run's plan.
import pg from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { createPools } from '../src/db';
import { switchoverInput } from '../src/input';
import { chooseCutoff } from '../activities/attachplan';
import { approveSignal, rejectSignal, signoffSignal, statusQuery } from '../src/shared';
import type { RehearsalStatus } from '../src/rehearsal-report';
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../workflows/rollback';
import type { MaintenanceReport } from '../workflows/maintenance';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, modelWriter, startTestWorker, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb('attach_t');
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

/** A table as an application has it: serial key, secondary index, a view, a grant, a comment, a trigger. */
async function makeTable(name: string, rows = 600, pool: pg.Pool = db.pool) {
  await pool.query(`
    create table ${name} (id bigserial primary key, occurred_at timestamptz not null, amount_cents bigint not null default 0, note text);
    create index ${name}_occurred on ${name} (occurred_at);
    comment on table ${name} is 'the application''s ${name}';
    grant select on ${name} to public;
    create or replace function ${name}_touch() returns trigger language plpgsql as $$ begin new.note := coalesce(new.note, 'touched'); return new; end $$;
    create trigger ${name}_touch before insert or update on ${name} for each row execute function ${name}_touch();
    create view ${name}_recent as select id, occurred_at from ${name};
    insert into ${name} (occurred_at, amount_cents) select now() - (g % 150) * interval '1 day' - g * interval '1 minute', g from generate_series(1, ${rows}) g;
  `);
}

function start(input: Record<string, unknown>, prefix: string) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(prefix),
    args: [{ strategy: 'attach', backup: 'none', ...input }],
  });
}

const filenode = async (rel: string) => (await db.pool.query(`select pg_relation_filenode($1::regclass)::text as f`, [rel])).rows[0].f as string;
const rowsOf = async (table: string) =>
  (await db.pool.query(`select id::text, occurred_at::text, amount_cents::text from ${table} order by id`)).rows.map(
    (r) => `${r.id} ${r.occurred_at} ${r.amount_cents}`,
  );

/**
 * A live writer: inserts, updates, moves of the key within the history range (and, once told the
 * cutover is done, across the cutoff), deletes; keeps what it committed as the expected rows.
 */
function liveWriter(table: string) {
  let across: string | null = null;
  const w = modelWriter(
    db.url,
    table,
    ['id', 'occurred_at', 'amount_cents'],
    async (x) => {
      const op = x.n % 6;
      if (op === 0 || op === 1) await x.write(`insert into ${table} (occurred_at, amount_cents) values (now() - random() * interval '20 days', ${x.n})`);
      else if (op === 2) await x.write(`update ${table} set amount_cents = amount_cents + 1 where id = $1`, [x.pick()]);
      // A key move within the history range (and within a partition or across the old periods).
      else if (op === 3) await x.write(`update ${table} set occurred_at = occurred_at - interval '9 days' where id = $1`, [x.pick()]);
      // After cutover: a key move across the cutoff, out of the history partition.
      else if (op === 4 && across) await x.write(`update ${table} set occurred_at = $2::timestamptz + interval '3 days' where id = $1`, [x.pick(), across]);
      else if (op === 5) await x.remove(x.pick());
      else return false;
    },
    5,
  );
  return Object.assign(w, {
    crossCutoff(cutoff: string) {
      across = cutoff;
    },
  });
}

test('the cutoff: the first period boundary after today + how far ahead the data is + the approval window', () => {
  expect(chooseCutoff({ today: '2026-12-01', max: '2026-11-30', interval: 'month', approvalTimeout: '24h' })).toMatchObject({
    cutoff: '2027-01-01',
    aheadDays: 0,
    windowDays: 2,
  });
  // Near a month's end the window reaches into the next month: the boundary after it.
  expect(chooseCutoff({ today: '2026-12-30', max: null, interval: 'month', approvalTimeout: '24h' }).cutoff).toBe('2027-02-01');
  expect(chooseCutoff({ today: '2026-12-01', max: '2027-03-10', interval: 'month', approvalTimeout: '3d' })).toMatchObject({
    cutoff: '2027-04-01',
    aheadDays: 99,
    windowDays: 4,
  });
  expect(chooseCutoff({ today: '2026-12-01', max: '2026-12-01', interval: 'day', approvalTimeout: '90m' }).cutoff).toBe('2026-12-04');
  expect(chooseCutoff({ today: '2026-12-01', max: '2026-12-01', interval: 'week', approvalTimeout: '24h' }).cutoff).toBe('2026-12-07');
  expect(chooseCutoff({ today: '2026-12-01', max: '2027-06-01', interval: 'year', approvalTimeout: '24h' }).cutoff).toBe('2028-01-01');
});

test('attach under a live writer: no failed write, every committed row, same storage now a partition, new periods in their own partitions, maintenance', async () => {
  await makeTable('events');
  const before = await filenode('events');
  const writer = liveWriter('events');
  await waitFor(async () => writer.writes > 20, 'first writes');
  const handle = await start({ tables: [{ table: 'events', partitionKey: 'occurred_at', interval: 'month' }], premake: 2 }, 'attach-live');
  const atStart = writer.writes;
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');
  // The writer wrote while the indexes were built and the CHECK validated, and goes on through the cutover.
  expect(writer.writes).toBeGreaterThan(atStart);
  const cutoff = (await handle.query(statusQuery)).plan!.tables[0].attach!.cutoff;
  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  expect(report.tables[0].cutover!.lockMs).toBeGreaterThan(0);
  // After the cutover the writer also moves rows across the cutoff, out of the history partition.
  writer.crossCutoff(cutoff);
  const at = writer.writes;
  await waitFor(async () => writer.writes > at + 60, 'writes after cutover');
  await writer.stop();
  expect(writer.errors).toEqual([]);
  expect((await rowsOf('events')).sort()).toEqual([...writer.model.values()].sort());

  const rel = (
    await db.pool.query(`select relkind::text, relispartition, pg_get_expr(relpartbound, oid) as bound from pg_class where oid = 'events_history'::regclass`)
  ).rows[0];
  expect(rel).toEqual({ relkind: 'r', relispartition: true, bound: `FOR VALUES FROM (MINVALUE) TO ('${cutoff} 00:00:00+00')` });
  expect(await filenode('events_history')).toBe(before);
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'events'::regclass`)).rows[0].relkind).toBe('p');
  const moved = (await db.pool.query(`select count(*)::int as n from events where occurred_at >= $1::timestamptz`, [cutoff])).rows[0].n;
  expect(moved).toBeGreaterThan(0);
  // A new row dated in a new period lands in that period's partition; a past one in the history partition.
  const landed = await db.pool.query(
    `insert into events (occurred_at) values ($1::timestamptz + interval '1 day'), (now() - interval '1 year') returning tableoid::regclass::text as p`,
    [cutoff],
  );
  expect(landed.rows.map((r) => r.p)).toEqual([`events_p${cutoff.slice(0, 4)}${cutoff.slice(5, 7)}`, 'events_history']);
  // Queries on dates after the cutoff prune to the new partitions.
  const plan = (
    await db.pool.query(
      `explain (format json) select * from events where occurred_at >= $1::timestamptz and occurred_at < $1::timestamptz + interval '1 month'`,
      [cutoff],
    )
  ).rows[0]['QUERY PLAN'];
  const scanned = JSON.stringify(plan)
    .match(/"Relation Name":"[^"]+"/g)!
    .map((x) => x.slice(17, -1));
  expect([...new Set(scanned)]).toEqual([`events_p${cutoff.slice(0, 4)}${cutoff.slice(5, 7)}`]);
  // What the table carried: the view reads the parent, the trigger fires there, grants and comment.
  expect((await db.pool.query(`select count(*)::int as n from events_recent`)).rows[0].n).toBe(
    (await db.pool.query(`select count(*)::int as n from events`)).rows[0].n,
  );
  expect((await db.pool.query(`select note from events where occurred_at >= $1::timestamptz order by id desc limit 1`, [cutoff])).rows[0].note).toBe('touched');
  expect((await db.pool.query(`select has_table_privilege('public', 'events', 'select') as g, obj_description('events'::regclass) as c`)).rows[0]).toEqual({
    g: true,
    c: "the application's events",
  });
  const pk = (await db.pool.query(`select pg_get_constraintdef(oid) as d from pg_constraint where conrelid = 'events'::regclass and contype = 'p'`)).rows[0].d;
  expect(pk).toBe('PRIMARY KEY (id, occurred_at)');
  // The history partition keeps a unique index on id; our CHECK is gone (the partition bound holds it).
  const idx = (await db.pool.query(`select indexdef from pg_indexes where tablename = 'events_history' order by 1`)).rows.map((r) => r.indexdef);
  expect(idx).toContain('CREATE UNIQUE INDEX events_history_pk_unique ON public.events_history USING btree (id)');
  expect((await db.pool.query(`select count(*)::int as n from pg_constraint where conname = 'events_ps_before_cutoff'`)).rows[0].n).toBe(0);

  // Partition maintenance with the one history partition: nothing before the cutoff is made.
  const m: MaintenanceReport = await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maint'),
    args: [{ tables: ['events'], premake: 4 }],
  });
  expect(m.tables[0].created.length).toBeGreaterThan(0);
  expect(m.tables[0].created.every((n) => n > `events_p${cutoff.slice(0, 4)}${cutoff.slice(5, 7)}`)).toBe(true);

  // Cleanup drops nothing of the table's: the history partition stays.
  const c: SwitchoverReport = await w.client.workflow.execute('cleanup', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('clean'),
    args: [{ tables: ['events'] }],
  });
  expect(c.outcome).toBe('cleaned');
  expect(await filenode('events_history')).toBe(before);
});

test('rollback after cutover: one transaction, the rows written since (in new partitions and moved across the cutoff) back in the plain table, old primary key', async () => {
  await makeTable('orders');
  const plain = await dump(db.url, { schemaOnly: true });
  const before = await filenode('orders');
  const handle = await start({ tables: [{ table: 'orders', partitionKey: 'occurred_at', interval: 'month' }], approval: { required: false } }, 'attach-rb');
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  const cutoff =
    report.plan?.tables[0].attach?.cutoff ??
    (await db.pool.query(`select details->>'cutoff' as c from partition_switchover.audit where table_name = 'orders' and stage = 'CUTOVER'`)).rows[0].c;
  await db.pool.query(
    `insert into orders (occurred_at, amount_cents) values (now(), 1), ($1::timestamptz + interval '5 days', 2), ($1::timestamptz + interval '40 days', 3);
     update orders set occurred_at = $1::timestamptz + interval '2 days' where id in (1, 2, 3);
     update orders set amount_cents = amount_cents + 100 where id between 10 and 20;
     delete from orders where id between 30 and 35;`.replace(/\$1/g, `'${cutoff}'`),
  );
  const afterWrites = await rowsOf('orders');
  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: handle.workflowId }],
  });
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect(await rowsOf('orders')).toEqual(afterWrites);
  expect(await filenode('orders')).toBe(before);
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plain);
  // Writes go on as before the switchover.
  await db.pool.query(`insert into orders (occurred_at) values ($1::timestamptz + interval '1 day')`, [cutoff]);
});

test('reject before cutover: the CHECK and both indexes dropped, the table as it was', async () => {
  await makeTable('payments', 200);
  const plain = await dump(db.url, { schemaOnly: true });
  const handle = await start({ tables: [{ table: 'payments', partitionKey: 'occurred_at', interval: 'week' }] }, 'attach-reject');
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');
  const added = (await db.pool.query(`select count(*)::int as n from pg_indexes where tablename = 'payments'`)).rows[0].n;
  expect(added).toBe(4);
  await handle.signal(rejectSignal, { by: 'bob', reason: 'not today' });
  const r: SwitchoverReport = await handle.result();
  expect(r.outcome).toBe('rejected');
  expect(r.rollback?.tables.map((t) => t.from)).toEqual(['prepared']);
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plain);
});

test('dry run: the plan shows the cutoff and why, the indexes, the partitions from the cutoff on, the disk, the SQL', async () => {
  await makeTable('visits', 100);
  await db.pool.query(`insert into visits (occurred_at) values (now() + interval '50 days')`);
  const r: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('attach-dry'),
    args: [{ strategy: 'attach', dryRun: true, tables: [{ table: 'visits', partitionKey: 'occurred_at', interval: 'month' }], premake: 3 }],
  });
  const tp = r.plan!.tables[0];
  const a = tp.attach!;
  expect(a.aheadDays).toBe(50);
  // Past the newest row (50 days ahead) plus the approval window (24h + 1 day): the next month boundary after.
  const today = r.plan!.today;
  const horizon = new Date(Date.parse(`${today}T00:00:00Z`) + 52 * 86400000);
  const next = new Date(Date.UTC(horizon.getUTCFullYear(), horizon.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
  expect(a.cutoff).toBe(next);
  expect(a.why).toMatch(/newest row is 50 days ahead/);
  expect(a.partitions.map((p) => p.from)[0]).toBe(a.cutoff);
  expect(a.partitions[a.partitions.length - 1]).toMatchObject({ suffix: 'pmax', to: 'MAXVALUE' });
  expect(a.diskBytes).toBeGreaterThan(0);
  expect(tp.warnings.join('\n')).toMatch(/history partition visits_history is one partition/);
  const planSql = r.plan!.sql.visits;
  expect(planSql.indexes).toEqual([
    'CREATE UNIQUE INDEX CONCURRENTLY "visits_ps_pkey_key" ON "public"."visits" ("id", "occurred_at")',
    'CREATE UNIQUE INDEX CONCURRENTLY "visits_history_pk_unique" ON "public"."visits" ("id")',
  ]);
  expect(planSql.cutover.join('\n')).toMatch(/ATTACH PARTITION "public"."visits_history" FOR VALUES FROM \(MINVALUE\) TO \('\d{4}-\d{2}-01 00:00:00\+00'\)/);
  // Nothing changed.
  expect((await db.pool.query(`select count(*)::int as n from pg_indexes where tablename = 'visits'`)).rows[0].n).toBe(2);
});

test('refusals: NULLs in the key, an incoming foreign key, no usable unique key, a deferrable key, inheritance, and what the copy refuses', async () => {
  await db.pool.query(`
    create table r_nulls (id bigint primary key, at timestamptz);
    insert into r_nulls values (1, now()), (2, null);
    create table r_parent (id bigint primary key, at date not null);
    create table r_child (id bigint primary key, parent_id bigint references r_parent (id));
    create table r_nokey (id bigint, at date not null);
    create table r_deferred (id bigint, at date not null, constraint r_deferred_pkey primary key (id) deferrable);
    create table r_unique (id bigint primary key, code text unique, at date not null);
    create table r_inh (id bigint primary key, at date not null);
    create table r_inh_child (extra int) inherits (r_inh);
  `);
  const cases: [string, string, RegExp][] = [
    ['r_nulls', 'at', /r_nulls\.at holds NULLs/],
    ['r_parent', 'at', /foreign key r_child_parent_id_fkey on .*r_child references public\.r_parent; the attach strategy replaces/],
    ['r_nokey', 'at', /r_nokey has no primary key/],
    ['r_deferred', 'at', /primary key is DEFERRABLE/],
    ['r_unique', 'at', /unique index r_unique_code_key .* does not include the partition key/],
    ['r_inh', 'at', /public\.r_inh takes part in table inheritance/],
  ];
  for (const [table, key, why] of cases) {
    const h = await start({ tables: [{ table, partitionKey: key, interval: 'month' }] }, `refuse-${table}`);
    const f = await failureOf(h);
    expect(f.type).toBe('UnsupportedSchema');
    expect(f.message).toMatch(why);
    expect(f.message).toMatch(/Nothing was changed/);
  }
});

test('identity column, row-level security and a disabled trigger are carried; the rollback gives them back', async () => {
  await db.pool.query(`
    create table tickets (id bigint generated always as identity primary key, opened date not null, body text);
    insert into tickets (opened, body) select current_date - g, 't' || g from generate_series(1, 50) g;
    alter table tickets enable row level security;
    create policy tickets_all on tickets using (true);
    create or replace function tickets_noop() returns trigger language plpgsql as $$ begin return new; end $$;
    create trigger tickets_noop before insert on tickets for each row execute function tickets_noop();
    alter table tickets disable trigger tickets_noop;
  `);
  const plain = await dump(db.url, { schemaOnly: true });
  const handle = await start({ tables: [{ table: 'tickets', partitionKey: 'opened', interval: 'quarter' }], approval: { required: false } }, 'attach-identity');
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  // The parent hands out ids continuing the old sequence.
  const id = (await db.pool.query(`insert into tickets (opened, body) values (current_date, 'new') returning id`)).rows[0].id;
  expect(Number(id)).toBe(51);
  const flags = (
    await db.pool.query(
      `select relrowsecurity, (select tgenabled::text from pg_trigger where tgrelid = c.oid and tgname = 'tickets_noop') as t from pg_class c where oid = 'tickets'::regclass`,
    )
  ).rows[0];
  expect(flags).toEqual({ relrowsecurity: true, t: 'D' });
  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: handle.workflowId }],
  });
  expect(rb.tables[0].from).toBe('cutover');
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plain);
  expect((await db.pool.query(`insert into tickets (opened) values (current_date) returning id`)).rows[0].id).toBe('52');
});

test('rehearsal with the attach strategy and the load: every phase passes (phase 9 compares the rolled-back table with what the application saw), staging plain again', async () => {
  const staging = await createTestDb('attach_stg');
  const sw = await startTestWorker({ default: db.url, staging: staging.url });
  try {
    await makeTable('bookings', 400, staging.pool);
    const handle = await sw.client.workflow.start('rehearsal', {
      taskQueue: sw.taskQueue,
      workflowId: uniqueId('attach-rehearsal'),
      args: [
        {
          strategy: 'attach',
          backup: 'none',
          database: 'staging',
          tables: [{ table: 'bookings', partitionKey: 'occurred_at', interval: 'month' }],
          load: { ratePerSec: 60, durationMs: 1000 },
        },
      ],
    });
    const waiting = await waitFor(
      async () => {
        const s = (await handle.query(statusQuery)) as RehearsalStatus;
        return ['awaiting_signoff', 'failed'].includes(s.phase) && s;
      },
      'awaiting_signoff',
      110000,
    );
    expect([waiting.phase, waiting.error]).toEqual(['awaiting_signoff', undefined]);
    const phases = waiting.rehearsal.phases;
    expect(phases.slice(0, 9).map((p) => [p.phase, p.result, p.checks.filter((c) => c.status === 'fail')])).toEqual(
      phases.slice(0, 9).map((p) => [p.phase, 'pass', []]),
    );
    expect(phases[4].checks.find((c) => c.name === 'bookings switchover')!.detail).toMatch(/rows attached as the history partition \(no copy\)/);
    expect(waiting.rehearsal.report!.writer!.failedWrites).toBe(0);
    expect(waiting.rehearsal.report!.writer!.writes).toBeGreaterThan(10);
    const kind = (await staging.pool.query(`select relkind::text from pg_class where oid = 'bookings'::regclass`)).rows[0].relkind;
    expect(kind).toBe('r');
    expect((await staging.pool.query(`select count(*)::int as n from pg_class where relname in ('bookings_history', 'bookings_partitioned')`)).rows[0].n).toBe(
      0,
    );
    await handle.signal(signoffSignal, { by: 'carol' });
    await handle.result();
  } finally {
    await sw.stop();
    await staging.drop();
  }
});

test('resumable and idempotent stages: an index left invalid is built again, the parent, CHECK and cutover happen once, the rollback twice ends plain', async () => {
  await makeTable('ledger', 300);
  const pools = createPools({ default: db.url });
  const acts = createActivities({ pools });
  const mock = new MockActivityEnvironment({ workflowExecution: { workflowId: uniqueId('attach-resume'), runId: 'r1' } });
  const same = { run: <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => mock.run(fn, ...a) as Promise<R> };
  const env = () => same;
  try {
    const plan = await env().run(
      acts.preflight,
      switchoverInput.parse({ strategy: 'attach', tables: [{ table: 'ledger', partitionKey: 'occurred_at', interval: 'month' }] }),
    );
    const tp = plan.tables[0];
    await same.run(acts.ensureState, 'default');
    await same.run(acts.attachIndexes, 'default', tp);
    // A build that crashed leaves the index invalid: the next attempt drops and builds it again.
    await db.pool.query(`update pg_index set indisvalid = false where indexrelid = 'ledger_ps_pkey_key'::regclass`);
    const again = await same.run(acts.attachIndexes, 'default', tp);
    expect(again.built).toEqual(['ledger_ps_pkey_key']);
    expect((await db.pool.query(`select indisvalid from pg_index where indexrelid = 'ledger_ps_pkey_key'::regclass`)).rows[0].indisvalid).toBe(true);
    for (let i = 0; i < 2; i++) {
      await same.run(acts.attachParent, 'default', tp, 2000);
      await same.run(acts.attachCheck, 'default', tp, 2000);
    }
    expect((await db.pool.query(`select count(*)::int as n from pg_inherits where inhparent = 'ledger_partitioned'::regclass`)).rows[0].n).toBe(
      tp.attach!.partitions.length,
    );
    const v = await same.run(acts.attachVerify, 'default', tp);
    expect(v).toMatchObject({ ok: true, rows: 300, outside: 0, checkValid: true, indexesValid: true });
    const first = await same.run(acts.attachCutover, 'default', tp, 2000);
    const second = await same.run(acts.attachCutover, 'default', tp, 2000);
    expect([first.alreadyDone, second.alreadyDone]).toEqual([false, true]);
    const rb1 = await same.run(acts.rollbackTable, 'default', tp, { restoreBackup: false, lockTimeoutMs: 2000 });
    const rb2 = await same.run(acts.rollbackTable, 'default', tp, { restoreBackup: false, lockTimeoutMs: 2000 });
    expect([rb1.from, rb2.from]).toEqual(['cutover', 'plain']);
    expect(
      (await db.pool.query(`select pg_get_constraintdef(oid) as d from pg_constraint where conrelid = 'ledger'::regclass and contype = 'p'`)).rows[0].d,
    ).toBe('PRIMARY KEY (id)');
    expect((await db.pool.query(`select count(*)::int as n from ledger`)).rows[0].n).toBe(300);
  } finally {
    await pools.end();
  }
});

test('a row at or after the cutoff written between preflight and the CHECK: validation refuses, naming why (StateConflict, not retried)', async () => {
  await makeTable('notes', 100);
  const pools = createPools({ default: db.url });
  const acts = createActivities({ pools });
  const mock = new MockActivityEnvironment({ workflowExecution: { workflowId: uniqueId('attach-late'), runId: 'r1' } });
  const run = { run: <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => mock.run(fn, ...a) as Promise<R> };
  try {
    const plan = await run.run(
      acts.preflight,
      switchoverInput.parse({ strategy: 'attach', tables: [{ table: 'notes', partitionKey: 'occurred_at', interval: 'month' }] }),
    );
    const tp = plan.tables[0];
    await db.pool.query(`insert into notes (occurred_at) values ($1::timestamptz + interval '1 day')`, [tp.attach!.cutoff]);
    await expect(run.run(acts.attachCheck, 'default', tp, 2000)).rejects.toThrow(
      /has rows with occurred_at NULL or at or after the cutoff .* written since preflight/,
    );
  } finally {
    await pools.end();
  }
});

test('approval timeout with onTimeout "fail": the message names the CHECK and cutoff left in place; the rollback workflow then restores the table', async () => {
  await makeTable('refunds', 100);
  const plain = await dump(db.url, { schemaOnly: true });
  const handle = await start(
    { tables: [{ table: 'refunds', partitionKey: 'occurred_at', interval: 'month' }], approval: { timeout: '2s', onTimeout: 'fail' } },
    'attach-timeout',
  );
  const f = await failureOf(handle);
  expect(f.type).toBe('ApprovalTimedOut');
  expect(f.message).toMatch(
    /The CHECKs refusing rows at or after the cutoff \(refunds_ps_before_cutoff on refunds: \d{4}-\d{2}-01\), our indexes and refunds_partitioned are still in place/,
  );
  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: handle.workflowId }],
  });
  expect(rb.tables.map((t) => t.from)).toEqual(['prepared']);
  expect(await dump(db.url, { schemaOnly: true })).toEqual(plain);
});

test('a change since verification (an index added) makes the cutover refuse, naming it; the switchover rolls back', async () => {
  await makeTable('invoices', 100);
  const handle = await start({ tables: [{ table: 'invoices', partitionKey: 'occurred_at', interval: 'month' }] }, 'attach-change');
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');
  await db.pool.query(`create index invoices_note on invoices (note)`);
  await handle.signal(approveSignal, { by: 'alice' });
  const f = await failureOf(handle);
  expect(f.message).toMatch(/cutover of public\.invoices refused: index invoices_note was added to public\.invoices\. Nothing was changed/);
  expect(f.message).toMatch(/rollback .* completed: invoices back to plain \(was prepared\)/);
  const left = (
    await db.pool.query(
      `select count(*)::int as n from pg_class where relname in ('invoices_partitioned', 'invoices_ps_pkey_key', 'invoices_history_pk_unique')`,
    )
  ).rows[0].n;
  expect(left).toBe(0);
});

test('rollback after cutover refuses a row written since that reuses an id of the history partition, changing nothing; once it is re-keyed, the rollback completes with every row', async () => {
  await makeTable('trips', 50);
  const handle = await start({ tables: [{ table: 'trips', partitionKey: 'occurred_at', interval: 'month' }], approval: { required: false } }, 'attach-dup');
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  const cutoff = (await db.pool.query(`select details->>'cutoff' as c from partition_switchover.audit where table_name = 'trips' and stage = 'CUTOVER'`))
    .rows[0].c;
  await db.pool.query(`insert into trips (id, occurred_at, amount_cents) values (7, $1::timestamptz + interval '1 day', 700)`, [cutoff]);
  const rows = await rowsOf('trips');
  const args = [{ switchoverWorkflowId: handle.workflowId }];
  const first = w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId('rb'), args });
  await expect(first).rejects.toThrow();
  const f = await first.catch((e) => e as Error & { cause?: Error });
  expect(String(f.cause?.message)).toMatch(
    /rollback of public\.trips refused: a row written since cutover has the same id as a row of trips_history .*\(id\)=\(7\).* Nothing was changed/,
  );
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'trips'::regclass`)).rows[0].relkind).toBe('p');
  expect(await rowsOf('trips')).toEqual(rows);
  await db.pool.query(`update trips set id = 1000 where id = 7 and occurred_at >= $1::timestamptz`, [cutoff]);
  const rb: RollbackReport = await w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId('rb'), args });
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect((await rowsOf('trips')).length).toBe(rows.length);
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'trips'::regclass`)).rows[0].relkind).toBe('r');
});
