// Every bad input fails the switchover as FAILED at once (no retried activity, no workflow task
// retried), with a message naming the problem, and the database (schema and data) unchanged.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { seed } from '../demo/seed';
import { rejectSignal, statusQuery } from '../src/shared';
import { dump, failureOf, historyFacts } from './failure-helpers';
import { createTestDb, startTestWorker, uniqueId, waitFor, waitForStatistics, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
const revenues = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' };

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: 300, years: 1 });
  await db.pool.query(`
    create table no_pk (id bigint not null, at date not null);
    insert into no_pk values (1, '2024-01-01');
    create table null_keys (id bigint primary key, at timestamptz);
    insert into null_keys values (1, '2024-01-01'), (2, null);
    create table unique_no_key (id bigint primary key, at date not null, code text not null unique);
    insert into unique_no_key values (1, '2024-01-01', 'a');`);
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

async function expectRefused(input: unknown, message: RegExp, type: string) {
  const before = await dump(db.url, { withState: true });
  const handle = await w.client.workflow.start('switchover', { taskQueue: w.taskQueue, workflowId: uniqueId('bad'), args: [input] });
  const f = await failureOf(handle);
  expect(f.type).toBe(type);
  expect(f.message).toMatch(message);
  expect((await handle.describe()).status.name).toBe('FAILED');
  // Failed at once: every activity ran exactly once and no workflow task failed (and was retried).
  const facts = await historyFacts(handle);
  expect(facts.workflowTaskFailures).toBe(0);
  for (const attempts of Object.values(facts.attempts)) expect(attempts).toEqual([1]);
  expect(await dump(db.url, { withState: true })).toEqual(before);
  return f;
}

const cases: [string, unknown, RegExp, string][] = [
  ['no input at all', undefined, /tables: Invalid input: expected array, received undefined/, 'InvalidInput'],
  ['missing tables', { batchSize: 10 }, /tables: Invalid input: expected array, received undefined/, 'InvalidInput'],
  ['empty tables', { tables: [] }, /tables: must list at least one table/, 'InvalidInput'],
  ['tables of the wrong type', { tables: 'revenues' }, /tables: Invalid input: expected array, received string/, 'InvalidInput'],
  ['batchSize of the wrong type', { tables: [revenues], batchSize: '100' }, /batchSize: Invalid input: expected number, received string/, 'InvalidInput'],
  ['dryRun of the wrong type', { tables: [revenues], dryRun: 'yes' }, /dryRun: Invalid input: expected boolean/, 'InvalidInput'],
  ['a misspelt field', { tables: [revenues], batchsize: 100 }, /Unrecognized key: "batchsize"/, 'InvalidInput'],
  ['unknown table', { tables: [{ ...revenues, table: 'nope' }] }, /table public\.nope does not exist/, 'UnsupportedSchema'],
  [
    'identifier carrying SQL',
    { tables: [{ ...revenues, table: 'revenues; drop table expenses; --' }] },
    /tables\.0\.table: must be a plain identifier/,
    'InvalidInput',
  ],
  ['schema carrying SQL', { tables: [revenues], schema: 'public"."x' }, /schema: must be a plain identifier/, 'InvalidInput'],
  [
    'unknown partition key',
    { tables: [{ ...revenues, partitionKey: 'nope' }] },
    /partition key column "nope" does not exist in public\.revenues/,
    'UnsupportedSchema',
  ],
  [
    'partition key of a non-date type',
    { tables: [{ ...revenues, partitionKey: 'category' }] },
    /partition key public\.revenues\.category is of type text; it must be date, timestamp or timestamptz/,
    'UnsupportedSchema',
  ],
  [
    'unknown interval',
    { tables: [{ ...revenues, interval: 'fortnight' }] },
    /tables\.0\.interval: Invalid option: expected one of "day"\|"week"\|"month"\|"quarter"\|"year"/,
    'InvalidInput',
  ],
  ['zero batch size', { tables: [revenues], batchSize: 0 }, /batchSize: Too small: expected number to be >0/, 'InvalidInput'],
  ['negative batch size', { tables: [revenues], batchSize: -5 }, /batchSize: Too small: expected number to be >0/, 'InvalidInput'],
  ['bad approval timeout', { tables: [revenues], approval: { timeout: 'soon' } }, /approval\.timeout: must be a duration/, 'InvalidInput'],
  [
    'unknown database target',
    { tables: [revenues], database: 'nope' },
    /database target "nope" is not configured on this worker; set DATABASE_URL_NOPE/,
    'UnknownDatabase',
  ],
  [
    'table without primary key',
    { tables: [{ table: 'no_pk', partitionKey: 'at', interval: 'month' }] },
    /public\.no_pk has no primary key/,
    'UnsupportedSchema',
  ],
  [
    'NULLs in the partition key',
    { tables: [{ table: 'null_keys', partitionKey: 'at', interval: 'month' }] },
    /public\.null_keys\.at holds NULLs; a row without a partition key has no partition/,
    'UnsupportedSchema',
  ],
  [
    // The copy strategy carries foreign keys into the table (a key table); the attach strategy cannot.
    'a table referenced by a foreign key, with the attach strategy',
    { tables: [{ table: 'organizations', partitionKey: 'created_at', interval: 'month' }], strategy: 'attach' },
    /foreign key revenues_organization_id_fkey on (public\.)?revenues references public\.organizations; the attach strategy replaces/,
    'UnsupportedSchema',
  ],
  [
    'a unique constraint without the partition key',
    { tables: [{ table: 'unique_no_key', partitionKey: 'at', interval: 'month' }] },
    /unique index unique_no_key_code_key on public\.unique_no_key \(code\) does not include the partition key at/,
    'UnsupportedSchema',
  ],
  ['the same table twice', { tables: [revenues, { ...revenues, interval: 'year' }] }, /tables\.1\.table: table "revenues" is listed twice/, 'InvalidInput'],
];

test.each(cases)('%s', async (_name, input, message, type) => {
  await expectRefused(input, message, type);
});

test('several problems at once are all named', async () => {
  const f = await expectRefused(
    {
      tables: [
        { ...revenues, partitionKey: 'nope' },
        { table: 'no_pk', partitionKey: 'at', interval: 'month' },
      ],
    },
    /partition key column "nope".*; public\.no_pk has no primary key/,
    'UnsupportedSchema',
  );
  expect(f.message).toMatch(/Nothing was changed/);
});

test('a second switchover on a table being migrated is refused, by lock and by workflow id', async () => {
  const first = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('holder'),
    args: [{ tables: [revenues], batchSize: 100 }],
  });
  await waitFor(async () => (await first.query(statusQuery)).phase === 'awaiting_approval', 'first switchover awaiting approval');
  // Its statistics (and autovacuum set back on its partitions) come in while approval waits: the
  // refused start's before-and-after dumps must not see them arrive.
  await waitForStatistics(first);

  const f = await expectRefused(
    { tables: [revenues] },
    new RegExp(`table public\\.revenues is already being migrated by workflow ${first.workflowId}`),
    'TableBusy',
  );
  expect(f.message).toMatch(/roll it back .*--type rollback/);

  // The same workflow id while the first runs: the server refuses the start itself.
  await expect(
    w.client.workflow.start('switchover', { taskQueue: w.taskQueue, workflowId: first.workflowId, args: [{ tables: [revenues] }] }),
  ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);

  await first.signal(rejectSignal, { by: 'test', reason: 'done with this test' });
  expect((await first.result()).outcome).toBe('rejected');
});
