// The worker process serves Prometheus metrics at PROMETHEUS_BIND_ADDRESS: the SDK's own and ours
// (src/metrics.ts), scraped here while a copy runs and again after the cutover.
import { createServer } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { seed } from '../demo/seed';
import { statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, temporalAddress, uniqueId, waitFor, type TestDb } from './helpers';
import { spawnWorker, type WorkerProcess } from './worker-process';

const ROWS = 2000;
let db: TestDb;
let worker: WorkerProcess;
let connection: Connection;
let metricsUrl: string;
const taskQueue = uniqueId('ps-metrics');

/** A free local port for the metrics endpoint. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Parses the Prometheus text format into samples: name, labels, value. */
function samples(text: string) {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      return { name: m[1], labels, value: Number(m[3]) };
    });
}
async function scrape() {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  return samples(await res.text());
}
const total = (s: ReturnType<typeof samples>, name: string, table: string) =>
  s.filter((x) => x.name === name && x.labels.table === table).reduce((a, x) => a + x.value, 0);

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: ROWS, years: 1 });
  const bind = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${bind}/metrics`;
  worker = await spawnWorker({ DATABASE_URL: db.url, TASK_QUEUE: taskQueue, PROMETHEUS_BIND_ADDRESS: bind });
  connection = await Connection.connect({ address: temporalAddress() });
});
afterAll(async () => {
  await connection?.close();
  if (worker) expect(await worker.stop()).toBe(0);
  await db?.drop();
});

test("the SDK's metrics and ours are scraped during the copy and after the cutover", async () => {
  expect(worker.output()).toContain(`metrics at ${metricsUrl}`);
  const client = new Client({ connection });
  const handle = await client.workflow.start('switchover', {
    taskQueue,
    workflowId: uniqueId('metrics'),
    args: [
      {
        tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }],
        batchSize: 50,
        throttle: { pauseMs: 100, parallelism: 2 },
        approval: { required: false },
      },
    ],
  });

  // During the copy: rows counted so far (fewer than all), a copy rate, the throttle's pause.
  const during = await waitFor(async () => {
    const s = await scrape();
    const streams = s.filter((x) => x.name === 'switchover_rows_copied' && x.labels.table === 'revenues' && x.value > 0);
    const copied = total(s, 'switchover_rows_copied', 'revenues');
    return streams.length === 2 && copied < ROWS && (await handle.query(statusQuery)).phase === 'copy' && s;
  }, 'rows copied by both streams while the copy runs');
  const rate = during.filter((x) => x.name === 'switchover_copy_rows_per_second' && x.labels.table === 'revenues');
  expect(rate.map((x) => x.labels.stream).sort()).toEqual(['0', '1']);
  expect(Math.max(...rate.map((x) => x.value))).toBeGreaterThan(0);
  const pause = during.filter((x) => x.name === 'switchover_throttle_pause_ms' && x.labels.table === 'revenues');
  expect(pause.map((x) => x.value)).toEqual([100, 100]);
  // Our metrics carry the SDK's activity tags, so they can be joined with its own.
  expect(rate[0].labels).toMatchObject({ namespace: 'default', taskQueue, activityType: 'copyRange' });

  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');

  const after = await scrape();
  expect(total(after, 'switchover_rows_copied', 'revenues')).toBe(ROWS);
  expect(total(after, 'switchover_verify_progress', 'revenues')).toBe(1);
  expect(total(after, 'switchover_verify_mismatched_ranges', 'revenues')).toBe(0);
  expect(total(after, 'switchover_cutover_lock_ms_count', 'revenues')).toBe(1);
  expect(total(after, 'switchover_cutover_lock_ms_sum', 'revenues')).toBeCloseTo(report.tables[0].cutover!.lockMs, 3);
  // The SDK's own: activity and workflow task metrics for this task queue.
  const sdk = new Set(after.filter((x) => x.labels.task_queue === taskQueue).map((x) => x.name));
  for (const name of ['temporal_activity_execution_latency_count', 'temporal_workflow_task_execution_latency_count', 'temporal_worker_task_slots_available']) {
    expect(sdk).toContain(name);
  }
});
