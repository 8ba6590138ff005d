// More than one worker on the task queue, as a team deploys it (docker-compose.yml: replicas 2):
// two `npm run worker` processes share one switchover's copy streams, and a worker stopped by
// SIGTERM drains (its copy stops after a committed batch and is handed back) while the
// switchover finishes on the other one.
import { Client, Connection } from '@temporalio/client';
import { seed } from '../demo/seed';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, temporalAddress, temporalCli, uniqueId, waitFor, type TestDb } from './helpers';
import { spawnWorker, type WorkerProcess } from './worker-process';

const ROWS = 1000;
const taskQueue = uniqueId('ps-workers');
let db: TestDb;
let workers: WorkerProcess[] = [];
let connection: Connection;
let client: Client;

const identityOf = (w: WorkerProcess) => /partition-switchover worker (\S+) on /.exec(w.output())![1];

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: ROWS, years: 1 });
  // Two activities at a time per worker: a copy of four streams must use both workers.
  const env = { DATABASE_URL: db.url, TASK_QUEUE: taskQueue, MAX_CONCURRENT_ACTIVITIES: '2', WORKER_SHUTDOWN_GRACE_TIME: '2s' };
  workers = await Promise.all([spawnWorker(env), spawnWorker(env)]);
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
});
afterAll(async () => {
  await connection?.close();
  for (const w of workers) await w.stop();
  await db?.drop();
});

type Event = Record<string, any>;
const decode = (p?: { data?: string }) => (p?.data ? JSON.parse(Buffer.from(p.data, 'base64').toString()) : undefined);

/** Each copyRange of a workflow: its summary (the range) and the attempt that completed it. */
async function copies(workflowId: string) {
  const events: Event[] = JSON.parse(await temporalCli(['workflow', 'show', '--workflow-id', workflowId, '--output', 'json'])).events;
  const scheduled = new Map<string, string>();
  const out: { range: string; identity: string; attempt: number; lastFailure?: string }[] = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s?.activityType.name === 'copyRange') scheduled.set(String(e.eventId), decode(e.userMetadata?.summary));
    const st = e.activityTaskStartedEventAttributes;
    if (st && scheduled.has(String(st.scheduledEventId))) {
      out.push({ range: scheduled.get(String(st.scheduledEventId))!, identity: st.identity, attempt: st.attempt, lastFailure: st.lastFailure?.message });
    }
  }
  return out;
}

async function countRows(table: string) {
  return Number((await db.pool.query(`select count(*) from ${table}`)).rows[0].count);
}

test('two worker processes share the copy of one switchover: each copied some of the ranges', async () => {
  const ids = workers.map(identityOf);
  expect(new Set(ids).size).toBe(2);
  const handle = await client.workflow.start('switchover', {
    taskQueue,
    workflowId: uniqueId('two-workers'),
    args: [
      {
        tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }],
        batchSize: 50,
        throttle: { pauseMs: 50, parallelism: 4 },
        approval: { required: false },
      },
    ],
  });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  expect(report.tables[0].verification?.ok).toBe(true);
  expect(report.tables[0].copy.streams.reduce((a, s) => a + s.rowsCopied, 0)).toBe(ROWS);

  const done = await copies(handle.workflowId);
  expect(done.map((c) => c.range).sort()).toEqual([
    'copy revenues id 1..250 (stream 1/4)',
    'copy revenues id 251..500 (stream 2/4)',
    'copy revenues id 501..750 (stream 3/4)',
    'copy revenues id 751..1000+ (stream 4/4)',
  ]);
  const byWorker = new Map<string, string[]>();
  for (const c of done) byWorker.set(c.identity, [...(byWorker.get(c.identity) ?? []), c.range]);
  expect([...byWorker.keys()].sort()).toEqual([...ids].sort());
  expect(await countRows('revenues')).toBe(ROWS);
});

test('SIGTERM: the worker drains and exits, its copy is handed back and the switchover finishes on the other worker', async () => {
  const handle = await client.workflow.start('switchover', {
    taskQueue,
    workflowId: uniqueId('sigterm'),
    args: [
      {
        tables: [{ table: 'expenses', partitionKey: 'occurred_at', interval: 'month' }],
        batchSize: 20,
        throttle: { pauseMs: 100, parallelism: 2 },
        approval: { required: false },
      },
    ],
  });
  // Both copy streams running, each with a committed batch.
  const running = await waitFor(async () => {
    const d = await handle.describe();
    const copying = (d.raw.pendingActivities ?? []).filter((a) => a.activityType?.name === 'copyRange' && a.lastWorkerIdentity);
    const progressed = Number(
      (await db.pool.query(`select count(*) from partition_switchover.copy_progress where workflow_id = $1 and rows_copied > 0`, [handle.workflowId])).rows[0]
        .count,
    );
    return copying.length === 2 && progressed === 2 && copying.map((a) => a.lastWorkerIdentity!);
  }, 'both copy streams running');
  const victim = workers.find((w) => identityOf(w) === running[0])!;
  const survivor = workers.find((w) => w !== victim)!;

  expect(await victim.stop('SIGTERM')).toBe(0);
  expect(victim.output()).toMatch(/partition-switchover worker stopped\s*$/);

  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  expect(report.tables[0].verification?.ok).toBe(true);
  expect(report.tables[0].copy.streams.reduce((a, s) => a + s.rowsCopied, 0)).toBe(ROWS);
  // The stream that ran on the stopped worker was retried on the survivor and resumed after the
  // last batch the stopped worker committed (not from the start).
  const handedBack = (await copies(handle.workflowId)).filter((c) => c.attempt > 1);
  expect(handedBack.length).toBeGreaterThanOrEqual(1);
  for (const c of handedBack) {
    expect(c.identity).toBe(identityOf(survivor));
    expect(c.lastFailure).toMatch(/shutting down/);
  }
  expect(report.tables[0].copy.streams.some((s) => s.resumedFrom !== null)).toBe(true);
  expect(await countRows('expenses')).toBe(ROWS);
});
