// Issue 12 item 12: what preflight lets through must not fail later. money and json columns in
// the checksums, transition-table triggers and nullable keys refused at preflight, typmod keys
// accepted, GENERATED ALWAYS identity restored from the backup, integer keys at their type's
// limits, smallint re-check chunks, and a composite key whose first column has few values.
import type { ApplicationFailure } from '@temporalio/common';
import { preflightPlan } from '../activities/preflight';
import { switchoverInput } from '../src/input';
import { checksumSql, rowHashExpr } from '../src/sqlgen';
import type { RollbackReport } from '../workflows/rollback';
import type { SwitchoverReport } from '../workflows/switchover';
import { injectAfter, type Injection } from './failure-helpers';
import { col, revenuesPlan } from './fixtures';
import { createTestDb, startTestWorker, tableRows, uniqueId, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
const inject = new Map<string, Injection>();

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table limits (id integer primary key, at date not null, doc json, fee money not null default 0);
    insert into limits (id, at, doc, fee)
      select g, current_date - (abs(g::bigint) % 200)::int, json_build_object('g', g), (abs(g::bigint) % 1000)::numeric::money
      from unnest(array[-2147483648, -2147483647, 2147483646, 2147483647]) g
      union all select g, current_date - g, json_build_object('g', g), 1234.56::money from generate_series(-50, 150) g;
    create table tiny (id smallint primary key, at date not null);
    insert into tiny select g, current_date - (g + 32768) % 300 from generate_series(-32768, 32767, 331) g;
    insert into tiny values (32767, current_date);
    create table tenants (tenant_id int, id int, at date not null, v text, primary key (tenant_id, id));
    insert into tenants select t, g, current_date - g % 200, 'v' from generate_series(1, 3) t, generate_series(1, 400) g;
    create table ident (id bigint generated always as identity primary key, at timestamp(3) with time zone not null, note text);
    insert into ident (at, note) select now() - g * interval '1 day', 'n' || g from generate_series(1, 150) g;

    create table tt (id bigint primary key, at date not null);
    create function tt_f() returns trigger language plpgsql as $$ begin return null; end $$;
    create trigger tt_added after insert on tt referencing new table as added for each row execute function tt_f();
    create trigger tt_stmt after insert on tt referencing new table as added for each statement execute function tt_f();
    create table nk (id bigint primary key, at date);
    insert into nk values (1, current_date);
  `);
  w = await startTestWorker({ default: db.url }, undefined, { wrapActivities: injectAfter(inject) });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

const TABLES = ['limits', 'tiny', 'tenants', 'ident'];
const ORDER: Record<string, string> = { tenants: 'tenant_id, id' };
const rowsOf = (t: string) => tableRows(db.pool, t, ORDER[t] ?? 'id');

async function preflightOf(input: Record<string, unknown>) {
  const c = await db.pool.connect();
  try {
    return await preflightPlan(c, switchoverInput.parse(input));
  } finally {
    c.release();
  }
}

test('money sums are summed as numeric and json/money columns hashed through castable types', () => {
  const tp = revenuesPlan(col('doc', 'json'), {
    columns: [col('id', 'bigint'), col('occurred_at', 'timestamp with time zone'), col('doc', 'json'), col('fee', 'money')],
    sumColumns: ['fee'],
  });
  expect(rowHashExpr(tp)).toBe('hash_record_extended(ROW("id", "occurred_at", "doc"::jsonb, "fee"::numeric), 0)');
  expect(checksumSql(tp, 'revenues')).toContain('coalesce(sum("fee"::numeric), 0)::text AS "sum_fee"');
});

test('preflight refuses a row trigger with transition tables, naming it; a statement one is fine', async () => {
  const err = (await preflightOf({ tables: [{ table: 'tt', partitionKey: 'at', interval: 'month' }] }).catch((e) => e)) as ApplicationFailure;
  expect(err.type).toBe('UnsupportedSchema');
  expect(err.message).toMatch(/trigger tt_added on public\.tt is a row trigger with a transition table \(REFERENCING OLD\/NEW TABLE\)/);
  expect(err.message).not.toMatch(/tt_stmt/);
});

test('preflight refuses a nullable partition key even with no NULLs, default partition or not', async () => {
  for (const defaultPartition of [false, true]) {
    const err = (await preflightOf({ tables: [{ table: 'nk', partitionKey: 'at', interval: 'month' }], defaultPartition }).catch(
      (e) => e,
    )) as ApplicationFailure;
    expect(err.type).toBe('UnsupportedSchema');
    expect(err.message).toMatch(/public\.nk\.at is nullable/);
    expect(err.message).toMatch(/alter table "public"\."nk" alter column "at" set not null/);
  }
});

test('a timestamptz(3) key is accepted', async () => {
  const plan = await preflightOf({ tables: [{ table: 'ident', partitionKey: 'at', interval: 'month' }] });
  expect(plan.tables[0].keyType).toBe('timestamptz');
});

test('integer keys at their limits, smallint, few-valued composite key, money, json, identity: switchover and restore', async () => {
  const before = Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await rowsOf(t)] as const)));
  const id = uniqueId('types');
  // As if the copy had raced a writer at the top of smallint's range: the re-check must repair
  // chunk 3 (keys 30000..32767), whose bounds are the type's own.
  inject.set(id, { activity: 'copyRecheck', before: true, action: async () => void (await db.pool.query(`delete from tiny_partitioned where id = 32767`)) });
  const report: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ tables: TABLES.map((table) => ({ table, partitionKey: 'at', interval: 'month' })), batchSize: 100, approval: { required: false } }],
  });
  expect(report.outcome).toBe('done');
  const tenants = report.tables.find((t) => t.table === 'tenants')!;
  // 1200 rows in batches of at most 100 (not one batch per 100 tenants).
  expect(tenants.copy.streams.reduce((n, s) => n + s.batches, 0)).toBeGreaterThanOrEqual(12);
  expect(tenants.copy.streams.reduce((n, s) => n + s.rowsCopied, 0)).toBe(1200);
  for (const t of TABLES) expect(await rowsOf(t)).toEqual(before[t]);

  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: id, restoreBackup: true }],
  });
  expect(Object.fromEntries(rb.tables.map((t) => [t.table, t.restoredRows]))).toEqual(Object.fromEntries(TABLES.map((t) => [t, before[t].length])));
  for (const t of TABLES) expect(await rowsOf(t)).toEqual(before[t]);
});
