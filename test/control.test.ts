// The operator in control of a running switchover (issue 13): reject and cancellation act at
// once in any stage, pause/resume/retune as Updates with validators, approvals by Update, and a
// worker lost in a short stage noticed within the heartbeat timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { seed } from '../demo/seed';
import { rejectSignal, statusQuery } from '../src/shared';
import type { SwitchoverStatus } from '../src/status';
import type { SwitchoverReport } from '../workflows/switchover';
import {
  createTestDb,
  startTestWorker,
  tableRows,
  temporalAddress,
  temporalCli,
  uniqueId,
  waitFor,
  waitForPhase,
  type TestDb,
  type TestWorker,
} from './helpers';

const revenues = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' };
const TARGETS = ['reject', 'cancel', 'pause', 'retune', 'approve', 'parallel', 'writers', 'indexes', 'indexes2'] as const;
type Target = (typeof TARGETS)[number];

const dbs = {} as Record<Target, TestDb>;
const before = {} as Record<Target, string[]>;
let w: TestWorker;

beforeAll(async () => {
  for (const t of TARGETS) {
    dbs[t] = await createTestDb();
    await seed(dbs[t].pool, { rows: t === 'approve' ? 300 : 3000, years: 1, organizations: 2 });
    before[t] = await tableRows(dbs[t].pool, 'revenues');
  }
  w = await startTestWorker(Object.fromEntries(TARGETS.map((t) => [t, dbs[t].url])));
});
afterAll(async () => {
  await w?.stop();
  for (const t of TARGETS) await dbs[t]?.drop();
});

function start(database: Target, opts: { batchSize: number; throttle: Record<string, number | boolean>; approvers?: string[] }): Promise<WorkflowHandle> {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(`control-${database}`),
    // The adaptive throttle off: these tests time the operator's controls over a paced copy.
    args: [
      {
        tables: [revenues],
        database,
        backup: 'none',
        batchSize: opts.batchSize,
        throttle: { adaptive: false, ...opts.throttle },
        approval: { approvers: opts.approvers ?? ['dana'] },
      },
    ],
  });
}

/** Batches and rows the copy committed so far, over all streams. */
async function copied(database: Target, workflowId: string): Promise<{ batches: number; rows: number; done: boolean }> {
  const r = await dbs[database].pool.query(
    `select coalesce(sum(batches), 0)::int as batches, coalesce(sum(rows_copied), 0)::int as rows, coalesce(bool_and(done), false) as done
       from partition_switchover.copy_progress where workflow_id = $1`,
    [workflowId],
  );
  return r.rows[0];
}

/** Each copy stream's committed batches and whether it is done, in stream order. */
async function streamsOf(database: Target, workflowId: string): Promise<{ stream: number; batches: number; done: boolean }[]> {
  return (
    await dbs[database].pool.query(`select stream, batches, done from partition_switchover.copy_progress where workflow_id = $1 order by stream`, [workflowId])
  ).rows;
}

/** The table is plain again: no partitioned copy, no trigger of ours, every row as before. */
async function expectPlain(database: Target) {
  const db = dbs[database];
  const r = await db.pool.query(
    `select (select relkind::text from pg_class where oid = 'revenues'::regclass) as kind,
            to_regclass('revenues_partitioned') is null as no_copy,
            (select count(*)::int from pg_trigger where tgrelid = 'revenues'::regclass and not tgisinternal) as triggers`,
  );
  expect(r.rows[0]).toEqual({ kind: 'r', no_copy: true, triggers: 0 });
  expect(await tableRows(db.pool, 'revenues')).toEqual(before[database]);
}

type History = temporal.api.history.v1.IHistory;
const acceptedUpdates = (h: History) =>
  (h.events ?? []).flatMap((e) =>
    e.workflowExecutionUpdateAcceptedEventAttributes ? [e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input?.name] : [],
  );
const details = async (h: WorkflowHandle) => (await h.query<{ currentDetails: string }>('__temporal_workflow_metadata')).currentDetails;

/** The message a refused Update answered with (the validator's error, under "Workflow Update failed"). */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
  }
  throw new Error('the update was accepted, but it should have been refused');
}

/** Resolves with the result, or fails naming how long it waited. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

test('a reject during the copy stops the copy and rolls back at once: plain again within 30 s, rows intact', async () => {
  // 3000 rows in batches of 20 with 500 ms between: the copy alone would take more than 75 s.
  const handle = await start('reject', { batchSize: 20, throttle: { pauseMs: 500, parallelism: 1 } });
  await waitFor(async () => (await copied('reject', handle.workflowId)).batches >= 3, 'copy under way');
  expect((await handle.query(statusQuery)).phase).toBe('copy');
  const t0 = Date.now();
  await handle.signal(rejectSignal, { by: 'dana', reason: 'wrong table' });
  const report: SwitchoverReport = await within(handle.result(), 30000, 'closed after the reject');
  const ms = Date.now() - t0;
  expect(report.outcome).toBe('rejected');
  expect(report.approval).toMatchObject({ state: 'rejected', by: 'dana', reason: 'wrong table' });
  expect(report.rollback?.ok).toBe(true);
  expect(ms).toBeLessThan(30000);
  // The copy did not run to its end.
  expect((await copied('reject', handle.workflowId)).done).toBe(false);
  await expectPlain('reject');
});

test('a workflow cancellation during the copy: the copy stops, the rollback runs, the workflow ends Canceled', async () => {
  const handle = await start('cancel', { batchSize: 20, throttle: { pauseMs: 500, parallelism: 2 } });
  await waitFor(async () => (await copied('cancel', handle.workflowId)).batches >= 3, 'copy under way');
  await handle.cancel();
  const err = await within(
    handle.result().then(
      () => undefined,
      (e: unknown) => e,
    ),
    30000,
    'closed after the cancel',
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect((await handle.describe()).status.name).toBe('CANCELLED');
  expect((await copied('cancel', handle.workflowId)).done).toBe(false);
  await expectPlain('cancel');
});

test('pause holds every copy batch until resume; status and details say who paused and why', async () => {
  // Two streams of 1500 rows in batches of 50, one a second: about 30 s of copy.
  const handle = await start('pause', { batchSize: 50, throttle: { pauseMs: 1000, parallelism: 2 } });
  await waitFor(async () => (await copied('pause', handle.workflowId)).batches >= 2, 'copy under way');
  const controls = await handle.executeUpdate<{ paused: { by: string; reason: string } | null }, [unknown]>('pause', {
    args: [{ by: 'alice', reason: 'peak traffic' }],
  });
  expect(controls.paused).toMatchObject({ by: 'alice', reason: 'peak traffic' });
  // One batch per stream may have been under way when the pause was accepted.
  const atPause = (await copied('pause', handle.workflowId)).batches;
  await new Promise((r) => setTimeout(r, 2500));
  const settled = (await copied('pause', handle.workflowId)).batches;
  expect(settled - atPause).toBeLessThanOrEqual(2);
  await new Promise((r) => setTimeout(r, 4000));
  expect((await copied('pause', handle.workflowId)).batches).toBe(settled);
  const s: SwitchoverStatus = await handle.query(statusQuery);
  expect(s.phase).toBe('copy');
  expect(s.throttle?.paused).toMatchObject({ by: 'alice', reason: 'peak traffic' });
  expect(s.progress.revenues.brake).toContain('paused by alice: peak traffic');
  expect(await details(handle)).toContain('Paused by alice: peak traffic');
  expect(await refusal(handle.executeUpdate('pause', { args: [{ by: 'bob', reason: 'again' }] }))).toBe(
    'pause refused: already paused by alice (peak traffic)',
  );

  // As the runbook says, with the CLI: it prints the accepted update's result.
  const out = await temporalCli([
    'workflow',
    'update',
    'execute',
    '--workflow-id',
    handle.workflowId,
    '--name',
    'resume',
    '--input',
    '{"by":"alice"}',
    '-o',
    'json',
  ]);
  expect(out).toMatch(/"paused":\s*null/);
  await waitFor(async () => (await copied('pause', handle.workflowId)).batches > settled + 2, 'copy resumed');
  expect((await handle.query(statusQuery)).throttle?.paused).toBeNull();
  const v = await waitForPhase(handle, 'awaiting_approval', 90000);
  expect(v.verification?.ok).toBe(true);
  await handle.executeUpdate('reject', { args: [{ by: 'dana', reason: 'test over' }] });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('rejected');
  await expectPlain('pause');
});

test('retune changes the batch size mid-copy; an invalid retune and an early approval are refused at once, leaving no event', async () => {
  const handle = await start('retune', { batchSize: 50, throttle: { pauseMs: 300, parallelism: 1 } });
  await waitFor(async () => (await copied('retune', handle.workflowId)).batches >= 3, 'copy under way');
  const early = await copied('retune', handle.workflowId);
  expect(early.rows / early.batches).toBeLessThanOrEqual(50);

  expect(await refusal(handle.executeUpdate('retune', { args: [{ by: 'bob', batchSize: 0 }] }))).toMatch(/^retune refused: batchSize: Too small/);
  expect(await refusal(handle.executeUpdate('approve', { args: [{ by: 'dana' }] }))).toBe('approve by dana refused: not waiting for approval (phase copy)');
  // Rows of each batch, as the progress row grows one batch at a time (a batch every 300 ms).
  const sizes: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    let last = await copied('retune', handle.workflowId);
    while (sampling) {
      const c = await copied('retune', handle.workflowId);
      if (c.batches === last.batches + 1) sizes.push(c.rows - last.rows);
      last = c;
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  await waitFor(async () => sizes.length >= 2, 'batches before the retune');
  const controls = await handle.executeUpdate<{ batchSize: number }, [unknown]>('retune', { args: [{ by: 'bob', batchSize: 400 }] });
  expect(controls.batchSize).toBe(400);
  const atRetune = sizes.length;
  await waitFor(async () => (await copied('retune', handle.workflowId)).done, 'the copy to finish', 60000);
  sampling = false;
  await sampler;
  expect(Math.max(...sizes.slice(0, atRetune))).toBeLessThanOrEqual(50);
  // The copy reads the settings at most once a second: a few more batches of 50 (one every
  // 300 ms), then every batch copies 400 keys (every key has a row), but the last.
  const after = sizes.slice(atRetune);
  const first = after.indexOf(400);
  expect(first).toBeGreaterThanOrEqual(0);
  expect(first).toBeLessThanOrEqual(4);
  expect(after.slice(0, first).every((n) => n <= 50)).toBe(true);
  expect(after.slice(first, -1).every((n) => n === 400)).toBe(true);
  const s: SwitchoverStatus = await handle.query(statusQuery);
  expect(s.throttle?.batchSize).toBe(400);
  expect(s.throttle?.changes?.[0]).toMatchObject({ by: 'bob', what: 'batchSize 50 → 400' });
  expect(await details(handle)).toContain('batches of 400 rows');

  await waitForPhase(handle, 'awaiting_approval', 90000);
  await handle.signal('approve', { by: 'dana' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  const history = await handle.fetchHistory();
  // The valid retune only: the refused retune and the early approve left nothing.
  expect(acceptedUpdates(history)).toEqual(['retune']);
});

test('a lower parallelism holds the higher stream of the table being copied until the lower one is done', async () => {
  const handle = await start('parallel', { batchSize: 50, throttle: { pauseMs: 300, parallelism: 2 } });
  const streams = () => streamsOf('parallel', handle.workflowId);
  await waitFor(async () => (await streams()).filter((x) => x.batches >= 2).length === 2, 'both streams copying');
  await handle.executeUpdate('retune', { args: [{ by: 'carol', parallelism: 1 }] });
  await new Promise((r) => setTimeout(r, 1500));
  const a = await streams();
  await new Promise((r) => setTimeout(r, 2500));
  const b = await streams();
  expect(b[0].done).toBe(false);
  expect(b[0].batches).toBeGreaterThan(a[0].batches);
  expect(b[1].batches).toBe(a[1].batches);
  expect((await handle.query(statusQuery)).progress.revenues.brake).toMatch(/^held: parallelism 1, stream 1 of 2 still copying/);
  await waitForPhase(handle, 'awaiting_approval', 90000);
  const done = await streams();
  expect(done.every((x) => x.done)).toBe(true);
  expect(done[1].batches).toBeGreaterThan(b[1].batches);
  await handle.executeUpdate('approve', { args: [{ by: 'dana' }] });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
});

/** An application session (application_name app) inserting into its own table every 20 ms until `stop()`. */
async function appWriter(db: TestDb) {
  await db.pool.query('create table app_events (id bigserial primary key)');
  const app = new pg.Client({ connectionString: db.url, application_name: 'app' });
  await app.connect();
  let writing = true;
  const loop = (async () => {
    while (writing) {
      await app.query('insert into app_events default values');
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      writing = false;
      await loop;
      await app.end();
    },
  };
}

test('writers first: with the adaptive throttle on, the higher stream holds while the application writes and the lower one copies; once nobody writes, it copies too', async () => {
  const db = dbs.writers;
  const app = await appWriter(db);
  const handle = await start('writers', { batchSize: 25, throttle: { pauseMs: 200, parallelism: 2, adaptive: true } });
  const streams = () => streamsOf('writers', handle.workflowId);
  try {
    await waitFor(async () => ((await streams())[0]?.batches ?? 0) >= 3, 'the first stream copying');
    const a = await streams();
    await new Promise((r) => setTimeout(r, 1500));
    const b = await streams();
    expect(b[0].batches).toBeGreaterThan(a[0].batches);
    expect(b[1]?.batches ?? 0).toBe(0);
    expect((await handle.query(statusQuery)).progress.revenues.brake).toMatch(
      /^held: one stream while the application writes \(adaptive throttle\), 1 stream below still copying/,
    );
  } finally {
    await app.stop();
  }
  // Nobody writes (2 s after the last write): the second stream copies while the first still does.
  const both = await waitFor(async () => {
    const s = await streams();
    return (s[1]?.batches ?? 0) > 0 && s;
  }, 'the second stream copying');
  expect(both[0].done).toBe(false);
  await waitForPhase(handle, 'awaiting_approval', 90000);
  expect((await streams()).every((x) => x.done)).toBe(true);
  await handle.executeUpdate('approve', { args: [{ by: 'dana' }] });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
});

test('writers first in the index builds: while the application writes, one partition is indexed at a time; with nobody writing, two at once', async () => {
  /** The most CREATE INDEX CONCURRENTLY of ours seen running at once in `database` (sampled every 2 ms) until its switchover waits for approval. */
  const buildsAtOnce = async (database: Target, writing: boolean) => {
    const db = dbs[database];
    // Without the writer: the seed's last write ended over 2 s ago, so nobody else is at work.
    const app = writing ? await appWriter(db) : await new Promise<null>((r) => setTimeout(() => r(null), 2500));
    const handle = await start(database, { batchSize: 1000, throttle: { parallelism: 2, adaptive: true } });
    let most = 0;
    let stop = false;
    const sampler = (async () => {
      while (!stop) {
        const r = await db.pool.query(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and application_name = 'partition-switchover' and state = 'active' and query ~* '^create index concurrently'`,
        );
        most = Math.max(most, r.rows[0].n);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    try {
      await waitForPhase(handle, 'awaiting_approval', 90000);
    } finally {
      stop = true;
      await sampler;
      await app?.stop();
    }
    await handle.executeUpdate('approve', { args: [{ by: 'dana' }] });
    expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
    return most;
  };
  expect(await buildsAtOnce('indexes', true)).toBe(1);
  expect(await buildsAtOnce('indexes2', false)).toBe(2);
});

test('an approval by Update from someone not in approvers is refused at once and leaves no event; an approver is accepted', async () => {
  const handle = await start('approve', { batchSize: 1000, throttle: {}, approvers: ['dana'] });
  await waitForPhase(handle, 'awaiting_approval', 90000);
  const t0 = Date.now();
  expect(await refusal(handle.executeUpdate('approve', { args: [{ by: 'mallory' }] }))).toBe('approve by mallory refused: not in approval.approvers (dana)');
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(acceptedUpdates(await handle.fetchHistory())).toEqual([]);
  expect((await handle.query(statusQuery)).approval.state).toBe('waiting');

  const approval = await handle.executeUpdate('approve', { args: [{ by: 'dana', comment: 'verified' }] });
  expect(approval).toMatchObject({ state: 'approved', by: 'dana', comment: 'verified' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  expect(acceptedUpdates(await handle.fetchHistory())).toEqual(['approve']);
});

describe('a worker SIGKILLed in a short stage', () => {
  let db: TestDb;
  let proc: ChildProcess | undefined;
  let second: TestWorker | undefined;
  afterAll(async () => {
    if (proc?.pid && proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid, 'SIGKILL');
    await second?.stop();
    await db?.drop();
  });

  test('is noticed within the heartbeat timeout: another worker runs the stage again and the switchover completes', async () => {
    db = await createTestDb();
    await seed(db.pool, { rows: 300, years: 1, organizations: 2 });
    const taskQueue = uniqueId('control-kill-q');
    let out = '';
    proc = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'slow-worker.ts')], {
      cwd: join(__dirname, '..'),
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporalAddress(),
        TASK_QUEUE: taskQueue,
        DATABASE_URL: db.url,
        WORKFLOW_BUNDLE: process.env.PS_TEST_WORKFLOW_BUNDLE!,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    proc.stdout!.on('data', (d) => (out += d));
    await waitFor(async () => out.includes('slow worker ready'), 'the slow worker to start', 30000);
    const { Client, Connection } = await import('@temporalio/client');
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const client = new Client({ connection });
      const handle = await client.workflow.start('switchover', {
        taskQueue,
        workflowId: uniqueId('control-kill'),
        args: [{ tables: [revenues], backup: 'none', approval: { required: false } }],
      });
      await waitFor(async () => out.includes('slow installTriggers attempt 1'), 'installTriggers under way on the slow worker', 60000);
      const killedAt = Date.now();
      process.kill(-proc.pid!, 'SIGKILL');
      let retriedAt = 0;
      second = await startTestWorker({ default: db.url }, taskQueue, {
        wrapActivities: (acts) => ({
          ...acts,
          async installTriggers(...args: Parameters<typeof acts.installTriggers>) {
            if (Context.current().info.attempt >= 2 && !retriedAt) retriedAt = Date.now();
            return acts.installTriggers(...args);
          },
        }),
      });
      const report: SwitchoverReport = await within(handle.result(), 60000, 'switchover after the kill');
      expect(report.outcome).toBe('done');
      // heartbeatTimeout 10 s, plus the retry's first backoff and the poll.
      expect(retriedAt - killedAt).toBeLessThan(20000);
      const history = await handle.fetchHistory();
      const scheduled = new Map<string, string>();
      let started: { attempt: number; at: number } | undefined;
      for (const e of history.events ?? []) {
        if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '');
        const st = e.activityTaskStartedEventAttributes;
        if (st && scheduled.get(String(st.scheduledEventId)) === 'installTriggers') {
          started = { attempt: st.attempt ?? 1, at: Number(e.eventTime!.seconds) * 1000 + Math.round((e.eventTime!.nanos ?? 0) / 1e6) };
        }
      }
      expect(started?.attempt).toBe(2);
      expect(started!.at - killedAt).toBeLessThan(20000);
    } finally {
      await connection.close();
    }
  });
});
