// End to end the way an operator works: `npm run worker` as a real process, and the Temporal CLI to
// start a switchover from a JSON file, query its status, approve it and read its history.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seed } from '../demo/seed';
import { createTestDb, temporalCli, uniqueId, waitFor, type TestDb } from './helpers';
import { spawnWorker, type WorkerProcess } from './worker-process';

let db: TestDb;
let worker: WorkerProcess;
const taskQueue = uniqueId('ps-cli');

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: 2000, years: 1 });
  worker = await spawnWorker({ DATABASE_URL: db.url, TASK_QUEUE: taskQueue });
});
afterAll(async () => {
  await worker?.stop();
  await db?.drop();
});

test('start from JSON, query status, approve, show history', async () => {
  const id = uniqueId('cli');
  const file = join(process.env.PS_TEST_DIR!, `${id}.json`);
  writeFileSync(file, JSON.stringify({ tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'quarter' }], batchSize: 300 }));
  await temporalCli(['workflow', 'start', '--type', 'switchover', '--task-queue', taskQueue, '--workflow-id', id, '--input-file', file]);

  const status = await waitFor(
    async () => {
      const out = JSON.parse(await temporalCli(['workflow', 'query', '--workflow-id', id, '--name', 'status', '-o', 'json']));
      const s = out.queryResult[0];
      return s.phase === 'awaiting_approval' && s;
    },
    'awaiting_approval via CLI query',
    90000,
  );
  expect(status.verification.ok).toBe(true);
  expect(status.verification.tables[0].legacy.rows).toBe(2000);

  await temporalCli(['workflow', 'signal', '--workflow-id', id, '--name', 'approve', '--input', '{"by":"carol","comment":"checked"}']);
  const result = JSON.parse(await temporalCli(['workflow', 'result', '--workflow-id', id, '-o', 'json']));
  expect(result.status).toBe('COMPLETED');
  expect(result.result.outcome).toBe('done');
  expect(result.result.approval).toMatchObject({ state: 'approved', by: 'carol' });

  const history = JSON.parse(await temporalCli(['workflow', 'show', '--workflow-id', id, '-o', 'json']));
  const types = history.events.map((e: { eventType: string }) => e.eventType);
  expect(types).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED');
  expect(types[types.length - 1]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
  const kind = await db.pool.query(`select relkind::text from pg_class where relname = 'revenues'`);
  expect(kind.rows[0].relkind).toBe('p');
});
