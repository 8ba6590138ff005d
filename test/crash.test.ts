// Crashes with real processes: a worker process SIGKILLed mid-copy, a PostgreSQL backend
// terminated mid-batch, and the Temporal dev server itself killed and restarted mid-run (a
// switchover's and a fleet's).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { seed } from '../demo/seed';
import { approveSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { historyFacts } from './failure-helpers';
import { ADMIN_URL, createTestDb, startTestWorker, tableRows, temporalAddress, uniqueId, waitFor, type TestDb } from './helpers';
import type { FleetReport } from '../src/rollout';

const ROOT = join(__dirname, '..');
const revenues = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' };

/** Kills a process we started, by its own process group (the worker may have children). */
function killGroup(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL') {
  if (p?.pid && p.exitCode === null && p.signalCode === null) {
    try {
      process.kill(-p.pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function exited(p: ChildProcess): Promise<void> {
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', () => r()));
}

/** `npm run worker` as a child process: the real entry point, configured by the environment. */
function workerProcess(env: Record<string, string>): ChildProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DATABASE_URL')));
  return spawn(process.execPath, ['--import', 'tsx', 'bin/worker.ts'], {
    cwd: ROOT,
    env: { ...base, WORKFLOW_BUNDLE: process.env.PS_TEST_WORKFLOW_BUNDLE!, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
}

/** Rows of each copy stream's progress row, as the copy committed them. */
async function copyProgress(db: TestDb, workflowId: string) {
  const r = await db.pool.query(
    `select stream, cursor, rows_copied::int as rows, done from partition_switchover.copy_progress where workflow_id = $1 order by stream`,
    [workflowId],
  );
  return r.rows as { stream: number; cursor: string[] | null; rows: number; done: boolean }[];
}

async function expectWhole(db: TestDb, before: string[]) {
  expect(await tableRows(db.pool, 'revenues')).toEqual(before);
  const r = await db.pool.query(`select count(*)::int as n, count(distinct id)::int as ids from revenues`);
  expect(r.rows[0]).toEqual({ n: before.length, ids: before.length });
}

describe('worker SIGKILLed in the middle of the copy', () => {
  let db: TestDb;
  const procs: ChildProcess[] = [];
  afterAll(async () => {
    procs.forEach((p) => killGroup(p));
    await db?.drop();
  });

  test('restarted, the switchover completes, every row once, the copy resumed from its recorded position', async () => {
    db = await createTestDb();
    await seed(db.pool, { rows: 20000, years: 1 });
    const before = await tableRows(db.pool, 'revenues');
    const taskQueue = uniqueId('crash-q');
    const env = { DATABASE_URL: db.url, TEMPORAL_ADDRESS: temporalAddress(), TASK_QUEUE: taskQueue };
    const connection = await Connection.connect({ address: temporalAddress() });
    const client = new Client({ connection });
    try {
      procs.push(workerProcess(env));
      const id = uniqueId('sigkill');
      const handle = await client.workflow.start('switchover', {
        taskQueue,
        workflowId: id,
        args: [{ tables: [revenues], batchSize: 500, throttle: { pauseMs: 150, parallelism: 2 }, approval: { required: false } }],
      });
      // Mid-copy: some batches committed in each stream, none finished.
      await waitFor(
        async () => {
          const p = await copyProgress(db, id).catch(() => []);
          return p.length === 2 && p.every((s) => s.rows >= 1000 && !s.done);
        },
        'copy under way',
        90000,
      );
      killGroup(procs[0]);
      await exited(procs[0]);
      // The killed worker's backends go away with their uncommitted batch; what is left is the recorded position.
      await waitFor(async () => {
        const r = await db.pool.query(`select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'partition-switchover'`, [
          db.name,
        ]);
        return r.rows[0].n === 0;
      }, 'killed worker backends gone');
      const atKill = await copyProgress(db, id);
      expect(atKill.every((s) => !s.done && s.cursor)).toBe(true);

      procs.push(workerProcess(env));
      const report: SwitchoverReport = await handle.result();
      expect(report.outcome).toBe('done');
      // Each stream's retry started exactly where its last committed batch ended: no batch repeated.
      const streams = report.tables[0].copy.streams;
      for (const s of atKill) expect(streams.find((r) => r.stream === s.stream)?.resumedFrom).toEqual(s.cursor);
      expect(streams.reduce((a, s) => a + s.rowsCopied, 0)).toBe(before.length);
      expect(Math.max(...(await historyFacts(handle)).attempts.copyRange)).toBe(2);
      await expectWhole(db, before);
    } finally {
      await connection.close();
    }
  });
});

test('a PostgreSQL backend terminated in the middle of a batch: retried, nothing lost or duplicated', async () => {
  const db = await createTestDb();
  const w = await startTestWorker({ default: db.url });
  const blocker = await db.pool.connect();
  try {
    await seed(db.pool, { rows: 2000, years: 1 });
    const before = await tableRows(db.pool, 'revenues');
    const handle = await w.client.workflow.start('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId('terminate'),
      args: [{ tables: [revenues], batchSize: 100, throttle: { parallelism: 1, pauseMs: 200 }, approval: { required: false } }],
    });
    // Once some batches are in, block inserts into the copy: the next batch's backend is then mid-batch for sure.
    await waitFor(async () => (await copyProgress(db, handle.workflowId).catch(() => [])).some((s) => s.rows > 0), 'copy under way');
    await blocker.query('begin');
    await blocker.query('lock table revenues_partitioned in share mode');
    const pid = await waitFor(async () => {
      const r = await db.pool.query(
        `select pid from pg_stat_activity where datname = $1 and application_name = 'partition-switchover' and wait_event_type = 'Lock'`,
        [db.name],
      );
      return r.rows[0]?.pid as number | undefined;
    }, 'copy batch waiting');
    const killed = await db.pool.query(`select pg_terminate_backend($1) as ok`, [pid]);
    expect(killed.rows[0].ok).toBe(true);
    await blocker.query('commit');

    const report: SwitchoverReport = await handle.result();
    expect(report.outcome).toBe('done');
    expect(report.tables[0].copy.streams[0].resumedFrom).not.toBeNull();
    expect(report.tables[0].copy.rows).toBe(before.length);
    expect(Math.max(...(await historyFacts(handle)).attempts.copyRange)).toBe(2);
    await expectWhole(db, before);
  } finally {
    await blocker.query('rollback').catch(() => undefined);
    blocker.release();
    await w.stop();
    await db.drop();
  }
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A dev server of our own (the project's CLI, a db file), killed and restarted on the same port and file. */
async function ownDevServer() {
  const cli = process.env.PS_TEST_TEMPORAL_CLI;
  if (!cli) throw new Error('PS_TEST_TEMPORAL_CLI unset: the project CLI is needed to run a server of our own');
  const dir = mkdtempSync(join(tmpdir(), 'ps-restart-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const startServer = async () => {
    server = spawn(
      cli,
      [
        'server',
        'start-dev',
        '--headless',
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
        '--db-filename',
        join(dir, 'temporal.db'),
        '--search-attribute',
        'SwitchoverPhase=Keyword',
        '--search-attribute',
        'SwitchoverTables=KeywordList',
        '--search-attribute',
        'SwitchoverFleet=Keyword',
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'], detached: true },
    );
    await waitFor(
      async () => {
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        try {
          await c.healthService.check({});
          return true;
        } finally {
          await c.close();
        }
      },
      'dev server up',
      30000,
    );
  };
  const restartServer = async () => {
    killGroup(server);
    await exited(server!);
    await startServer();
  };
  const stop = async () => {
    killGroup(server);
    if (server) await exited(server);
    rmSync(dir, { recursive: true, force: true });
  };
  await startServer();
  return { address, restartServer, stop };
}

test('the Temporal dev server killed and restarted (same port and db file) during the copy and the approval wait: the switchover continues', async () => {
  const { address, restartServer, stop } = await ownDevServer();
  const db = await createTestDb();
  await seed(db.pool, { rows: 4000, years: 1 });
  const before = await tableRows(db.pool, 'revenues');
  try {
    const w = await startTestWorker({ default: db.url }, undefined, { address });
    try {
      const handle = await w.client.workflow.start('switchover', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('restart'),
        args: [{ tables: [revenues], batchSize: 200, throttle: { pauseMs: 400 } }],
      });
      await waitFor(async () => (await copyProgress(db, handle.workflowId).catch(() => [])).some((s) => s.rows > 0), 'copy under way');
      expect((await copyProgress(db, handle.workflowId)).some((s) => !s.done)).toBe(true);
      await restartServer();
      await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting approval after the restart', 90000);
      await restartServer();
      await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'still awaiting approval', 30000);
      await handle.signal(approveSignal, { by: 'alice' });
      const report: SwitchoverReport = await handle.result();
      expect(report.outcome).toBe('done');
      expect(report.tables[0].copy.rows).toBe(before.length);
      await expectWhole(db, before);
    } finally {
      await w.stop();
    }
  } finally {
    await stop();
    await db.drop();
  }
});

test('the dev server killed and restarted mid-wave: the fleet and its children carry on', async () => {
  const { address, restartServer, stop } = await ownDevServer();
  const dbs = [await createTestDb('ps_fleet_restart'), await createTestDb('ps_fleet_restart'), await createTestDb('ps_fleet_restart')];
  try {
    for (const db of dbs) await seed(db.pool, { rows: 1500, years: 1 });
    const before = await Promise.all(dbs.map((db) => tableRows(db.pool, 'revenues')));
    const w = await startTestWorker({ default: ADMIN_URL }, undefined, { address });
    try {
      const handle = await w.client.workflow.start('fleet', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('fleet-restart'),
        args: [
          {
            tables: [revenues],
            backup: 'none',
            batchSize: 100,
            throttle: { pauseMs: 200, adaptive: false },
            targets: { databases: dbs.map((db) => `default/${db.name}`) },
            rollout: { canary: 1, waveSize: 2 },
            approval: { required: false },
          },
        ],
      });
      await waitFor(
        async () => (await copyProgress(dbs[1], `${handle.workflowId}.default/${dbs[1].name}`).catch(() => [])).some((s) => s.rows > 0),
        'wave 1 copying',
        120000,
      );
      await restartServer();
      const report = (await handle.result()) as FleetReport;
      expect(report.counts).toEqual({ done: 3 });
      for (const [i, db] of dbs.entries()) await expectWhole(db, before[i]);
    } finally {
      await w.stop();
    }
  } finally {
    await stop();
    for (const db of dbs) await db.drop();
  }
});
