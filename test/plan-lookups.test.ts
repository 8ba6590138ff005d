// The plan says what gets slower (issue 24, item 5): a statement by the table's key without the
// partition key visits every partition after the switchover; the note gives the partitions, the
// locks such a statement takes against the server's lock table, and, with pg_stat_statements
// loaded (.ci/run preloads it), the application's most frequent such statements. Then the
// claim is checked: the statement really takes that many locks on the partitioned table.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sqlFile } from '../src/db';
import { conflictStatementsSql } from '../src/preflightsql';
import { statusQuery } from '../src/shared';
import { createTestDb, startTestWorker, uniqueId, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table items (id bigserial primary key, sold_on date not null, sku text not null, qty int not null);
    create index items_sku on items (sku);
    insert into items (sold_on, sku, qty) select current_date - (g % 700), 'sku' || (g % 50), g from generate_series(1, 2000) g;`);
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

async function statementsLoaded(): Promise<boolean> {
  try {
    await db.pool.query('create extension if not exists pg_stat_statements');
    await db.pool.query('select count(*) from pg_stat_statements');
    return true;
  } catch {
    return false;
  }
}

test('the plan names the partitions and locks of a lookup without the partition key, and the most frequent such statements', async () => {
  const loaded = await statementsLoaded();
  if (!loaded) console.log('pg_stat_statements is not preloaded on this server: the note says so (run .ci/run to preload it)');
  // The application's traffic: by id (does not prune after the switchover), and by date (does).
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    for (let i = 1; i <= 40; i++) await c.query('update items set qty = qty + 1 where id = $1', [i]);
    for (let i = 1; i <= 15; i++) await c.query('select count(*) from items where sold_on = current_date - $1::int', [i]);
  } finally {
    await c.end();
  }
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('lookups'),
    args: [{ tables: [{ table: 'items', partitionKey: 'sold_on', interval: 'month' }], dryRun: true }],
  });
  await handle.result();
  const plan = (await handle.query(statusQuery)).plan!.tables[0];
  const n = plan.partitions.length;
  const note = plan.warnings.find((x) => x.startsWith('a statement on public.items'))!;
  expect(note).toMatch(
    new RegExp(
      `^a statement on public\\.items that names \\(id\\) but not sold_on \\(e\\.g\\. UPDATE \\.\\.\\. WHERE id = \\$1\\) visits all ${n} partitions after the switchover ` +
        `and takes about ${n * 3 + 1} locks \\(each partition and its 2 indexes; on the plain table: 3\\), against a lock table of \\d+ shared by every session`,
    ),
  );
  if (loaded) {
    expect(note).toMatch(/the most frequent here that do not name it: 40 calls: update items set qty = qty \+ \$\d where id = \$\d$/);
    expect(note).not.toMatch(/sold_on = current_date/);
  } else {
    expect(note).toMatch(/pg_stat_statements is not installed and loaded here/);
  }
});

test('the claim holds: after the switchover an update by id takes the locks the plan said', async () => {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('lookups-real'),
    args: [{ tables: [{ table: 'items', partitionKey: 'sold_on', interval: 'month' }], approval: { required: false }, backup: 'none' }],
  });
  await handle.result();
  const plan = (await handle.query(statusQuery)).plan!.tables[0];
  const said = Number(/takes about (\d+) locks/.exec(plan.warnings.find((x) => x.startsWith('a statement on public.items'))!)![1]);
  const c = await db.pool.connect();
  try {
    await c.query('begin');
    await c.query('update items set qty = qty + 1 where id = 7');
    const held = Number((await c.query(`select count(*)::int as n from pg_locks where pid = pg_backend_pid() and locktype = 'relation'`)).rows[0].n);
    await c.query('rollback');
    // Within a few of the estimate (the catalog relations a plan reads come and go).
    expect(Math.abs(held - said)).toBeLessThanOrEqual(5);
  } finally {
    c.release();
  }
});

test("the ON CONFLICT statements read for the conflict check are this database's, not another's on the same server", async () => {
  if (!(await statementsLoaded())) return console.log('pg_stat_statements is not preloaded on this server: nothing to read (run .ci/run to preload it)');
  const other = await createTestDb();
  try {
    const marker = `other_${randomBytes(4).toString('hex')}`;
    await other.pool.query(`create table ${marker} (id int primary key); insert into ${marker} values (1) on conflict (id) do nothing`);
    await db.pool.query(`create table mine_conflict (id int primary key); insert into mine_conflict values (1) on conflict (id) do nothing`);
    const ext = (await db.pool.query(sqlFile('catalog/stat_statements_schema'))).rows[0].nspname as string;
    const queries = (await db.pool.query(conflictStatementsSql(ext))).rows.map((r) => r.query as string);
    expect(queries.some((q) => q.includes('mine_conflict'))).toBe(true);
    expect(queries.filter((q) => q.includes(marker))).toEqual([]);
  } finally {
    await other.drop();
  }
});
