// The upgrade path: a switchover waits for approval on worker A (this release); A is stopped and
// worker B starts with the next release, whose switchover has a new step guarded by patched();
// the approval reaches the old run on B, which completes without a determinism error, and a new
// run takes the new step. The same change without patched() fails to replay the old run.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { seed } from '../demo/seed';
import { approveSignal, statusQuery } from '../src/shared';
import { createWorker, type StartedWorker } from '../bin/worker';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, temporalAddress, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';
import { NEW_STEP_PATCH, NEW_STEP_SUMMARY } from './upgrade/new-step';

type History = temporal.api.history.v1.IHistory;
const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
const decode = (p: temporal.api.common.v1.IPayload | null | undefined): unknown => (p?.data ? JSON.parse(Buffer.from(p.data).toString()) : undefined);

/** Patch ids recorded by patched() in a history. */
function patchesIn(h: History): string[] {
  return (h.events ?? [])
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (decode(e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]) as { id: string }).id);
}
/** Summaries of the activities a history scheduled. */
function activitySummaries(h: History): unknown[] {
  return (h.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => decode(e.userMetadata?.summary));
}
const workflowTaskFailures = (h: History) => (h.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;
/** Which worker completed each workflow task, in order. */
const taskWorkers = (h: History) =>
  (h.events ?? []).flatMap((e) => (e.workflowTaskCompletedEventAttributes ? [e.workflowTaskCompletedEventAttributes.identity] : []));

let db: TestDb;
let connection: Connection;
let a: TestWorker | undefined;
let b: { started: StartedWorker; running: Promise<void>; connection: NativeConnection } | undefined;
let next: WorkflowBundle;
let unguarded: WorkflowBundle;

beforeAll(async () => {
  db = await createTestDb();
  connection = await Connection.connect({ address: temporalAddress() });
  await seed(db.pool, { rows: 300, years: 1, organizations: 2 });
  next = await bundleWorkflowCode({ workflowsPath: require.resolve('./upgrade/next-workflows'), logger: quietLogger });
  unguarded = await bundleWorkflowCode({ workflowsPath: require.resolve('./upgrade/unguarded-workflows'), logger: quietLogger });
});
afterAll(async () => {
  await a?.stop();
  if (b) {
    if (b.started.worker.getState() === 'RUNNING') b.started.worker.shutdown();
    await b.running;
    await b.connection.close();
  }
  await connection?.close();
  await db?.drop();
});

test('a switchover waiting for approval survives a deploy of a patched() change; new runs take the new step', async () => {
  const taskQueue = `ps-upgrade-${randomBytes(4).toString('hex')}`;
  a = await startTestWorker({ default: db.url }, taskQueue);
  const client = new Client({ connection });
  const oldId = uniqueId('upgrade-old');
  const old = await client.workflow.start('switchover', {
    taskQueue,
    workflowId: oldId,
    args: [{ tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }], batchSize: 100 }],
  });
  await waitFor(async () => (await old.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval on worker A');

  // Deploy: A stops, B starts with the next release on the same task queue.
  await a.stop();
  a = undefined;
  const nativeConnection = await NativeConnection.connect({ address: temporalAddress() });
  const started = await createWorker({
    connection: nativeConnection,
    taskQueue,
    targets: { default: db.url },
    workflowBundle: { code: next.code },
    identity: 'worker-B',
    log: noop,
  });
  b = { started, running: started.run(), connection: nativeConnection };

  await old.signal(approveSignal, { by: 'alice', comment: 'approved after the deploy' });
  const report: SwitchoverReport = await old.result();
  expect(report.outcome).toBe('done');
  const oldHistory = await old.fetchHistory();
  expect(workflowTaskFailures(oldHistory)).toBe(0);
  const workers = taskWorkers(oldHistory);
  expect(workers[0]).not.toBe('worker-B');
  expect(workers[workers.length - 1]).toBe('worker-B');
  // The old run took the old path: no marker of the new step (markers of today's own patches may be there).
  expect(patchesIn(oldHistory)).not.toContain(NEW_STEP_PATCH);
  expect(activitySummaries(oldHistory)).not.toContain(NEW_STEP_SUMMARY);

  // A run started after the deploy takes the new step (a patch marker, then the new activity).
  const fresh = await client.workflow.start('switchover', {
    taskQueue,
    workflowId: uniqueId('upgrade-new'),
    args: [{ tables: [{ table: 'expenses', partitionKey: 'occurred_at', interval: 'month' }], dryRun: true }],
  });
  expect(((await fresh.result()) as SwitchoverReport).outcome).toBe('dry_run');
  const freshHistory = await fresh.fetchHistory();
  expect(patchesIn(freshHistory)).toContain(NEW_STEP_PATCH);
  expect(activitySummaries(freshHistory)[0]).toBe(NEW_STEP_SUMMARY);

  // Both histories replay on the next release; without patched() the old one does not.
  await Worker.runReplayHistory({ workflowBundle: { code: next.code }, replayName: 'next' }, oldHistory);
  await Worker.runReplayHistory({ workflowBundle: { code: next.code }, replayName: 'next' }, freshHistory);
  await expect(Worker.runReplayHistory({ workflowBundle: { code: unguarded.code }, replayName: 'unguarded' }, oldHistory)).rejects.toThrow(
    DeterminismViolationError,
  );
});
