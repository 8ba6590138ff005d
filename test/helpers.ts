// Test helpers: a fresh database per test file, a worker on its own task queue against the
// run's real Temporal dev server, and the Temporal CLI for end-to-end checks.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { statusQuery } from '../src/shared';
import type { SwitchoverStatus } from '../src/status';
import { NativeConnection } from '@temporalio/worker';
import { createWorker, type StartedWorker } from '../bin/worker';

export const ADMIN_URL = process.env.PS_TEST_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestDb {
  name: string;
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestDb(prefix = 'ps_test'): Promise<TestDb> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: dbUrl(name), max: 4 });
  // drop() terminates the database's backends; an idle client that notices must not fail the test.
  pool.on('error', () => undefined);
  return {
    name,
    url: dbUrl(name),
    pool,
    async drop() {
      await pool.end();
      const a = new pg.Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export function temporalAddress(): string {
  const a = process.env.PS_TEST_TEMPORAL_ADDRESS;
  if (!a) throw new Error('PS_TEST_TEMPORAL_ADDRESS unset: run through jest (test/global-setup.ts starts the dev server)');
  return a;
}

export interface TestWorker {
  client: Client;
  taskQueue: string;
  started: StartedWorker;
  stop(): Promise<void>;
}

/** A worker of ours on a fresh task queue, running in this process until stop(). */
export async function startTestWorker(
  targets: Record<string, string>,
  taskQueue = `ps-${randomBytes(4).toString('hex')}`,
  opts: { wrapActivities?: Parameters<typeof createWorker>[0]['wrapActivities']; address?: string } = {},
): Promise<TestWorker> {
  const address = opts.address ?? temporalAddress();
  const nativeConnection = await NativeConnection.connect({ address });
  const started = await createWorker({
    connection: nativeConnection,
    taskQueue,
    targets,
    workflowBundle: { codePath: process.env.PS_TEST_WORKFLOW_BUNDLE! },
    log: () => undefined,
    wrapActivities: opts.wrapActivities,
  });
  const running = started.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  return {
    client,
    taskQueue,
    started,
    async stop() {
      if (started.worker.getState() === 'RUNNING') started.worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** A fresh database and a worker on it (target `default`) for the whole test file; `set` receives them once both are up. */
export function databaseAndWorker(set: (db: TestDb, w: TestWorker) => void): void {
  const env = databasesAndWorker(['default'], async () => undefined);
  beforeAll(() => set(env.dbs.default, env.w));
}

/**
 * Fresh databases by name, each made ready by `setup`, and one worker over them all (each
 * database its target by name), for the whole test file: `dbs` and `w` are filled before the
 * first test; the worker stops and the databases are dropped after the last.
 */
export function databasesAndWorker(
  names: readonly string[],
  setup: (db: TestDb, name: string) => Promise<unknown>,
  opts: Parameters<typeof startTestWorker>[2] = {},
): { dbs: Record<string, TestDb>; w: TestWorker } {
  const env = { dbs: {} as Record<string, TestDb>, w: undefined as unknown as TestWorker };
  beforeAll(async () => {
    for (const name of names) {
      env.dbs[name] = await createTestDb();
      await setup(env.dbs[name], name);
    }
    env.w = await startTestWorker(Object.fromEntries(names.map((n) => [n, env.dbs[n].url])), undefined, opts);
  });
  afterAll(async () => {
    await env.w?.stop();
    await Promise.all(Object.values(env.dbs).map((d) => d.drop()));
  });
  return env;
}

/** Drops cluster-wide roles a test made (after its databases, which hold their grants, are dropped). */
export async function dropRoles(...roles: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    for (const r of roles) await admin.query(`drop role if exists ${r}`);
  } finally {
    await admin.end();
  }
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

const run = promisify(execFile);
/** Runs the project's Temporal CLI against the test server; returns stdout. */
export async function temporalCli(args: string[]): Promise<string> {
  const bin = process.env.PS_TEST_TEMPORAL_CLI;
  if (!bin) throw new Error('the Temporal CLI is not provisioned (scripts/temporal.sh --ensure)');
  const { stdout } = await run(bin, [...args, '--address', temporalAddress()], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 60000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof FatalWait) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Waits until the workflow's status query reports `phase`; fails at once if the workflow closed first. */
export async function waitForPhase(handle: WorkflowHandle, phase: string, timeoutMs = 60000): Promise<SwitchoverStatus> {
  return waitFor(
    async () => {
      const s = await handle.query(statusQuery);
      if (s.phase === phase) return s;
      const d = await handle.describe();
      if (d.status.name !== 'RUNNING') {
        const failure = await handle.result().then(
          () => 'completed',
          (e: Error) => `${e.message}: ${(e.cause as Error)?.message}`,
        );
        throw new FatalWait(`workflow ${handle.workflowId} closed (${d.status.name}, ${failure}) before phase ${phase}; last phase ${s.phase}`);
      }
      return undefined;
    },
    `phase ${phase}`,
    timeoutMs,
  );
}

/** Waits until the statistics gathered behind the approval (status.statistics) are in for every table, and none failed. */
export async function waitForStatistics(handle: WorkflowHandle, timeoutMs = 60000): Promise<SwitchoverStatus> {
  return waitFor(
    async () => {
      const s = await handle.query(statusQuery);
      const st = Object.values(s.statistics ?? {});
      if (st.some((x) => x.startsWith('failed'))) throw new FatalWait(`statistics failed: ${JSON.stringify(s.statistics)}`);
      return st.length === s.tables.length && st.every((x) => x === 'done') ? s : undefined;
    },
    'statistics gathered',
    timeoutMs,
  );
}

class FatalWait extends Error {}

/** A canonical dump of a table's rows (ordered by the given key) for exact comparisons. */
export async function tableRows(pool: pg.Pool, table: string, orderBy = 'id'): Promise<string[]> {
  const r = await pool.query(`select t::text as row from ${table} t order by ${orderBy}`);
  return r.rows.map((x) => x.row as string);
}

/** What a step of `modelWriter` may do: pick a row it knows, write one with RETURNING the model's columns, delete one. */
export interface ModelWriterStep {
  /** The turn, from 1. */
  n: number;
  /** The id of a row the model holds, at random. */
  pick(): string;
  /** Runs an INSERT or UPDATE (without RETURNING); the row it returns is now what the table must hold. */
  write(sql: string, params?: unknown[]): Promise<void>;
  /** Deletes row `id`; once committed, the model drops it. */
  remove(id: string): Promise<void>;
}

/**
 * A live writer on `table` that keeps what it committed, rows as their `columns` joined by a space
 * (the expected rows): `step` makes one write per turn (false: nothing written), `pauseMs` apart.
 */
export function modelWriter(url: string, table: string, columns: string[], step: (w: ModelWriterStep) => Promise<boolean | void>, pauseMs: number) {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  const model = new Map<string, string>();
  const errors: string[] = [];
  const list = columns.map((c) => `${c}::text`).join(', ');
  const set = (r: Record<string, string>) => model.set(r.id, columns.map((c) => r[c]).join(' '));
  let writes = 0;
  let stop = false;
  const w: ModelWriterStep = {
    n: 0,
    pick() {
      const ids = [...model.keys()];
      return ids[Math.floor(Math.random() * ids.length)];
    },
    async write(sql, params = []) {
      const r = await pool.query(`${sql} RETURNING ${list}`, params);
      if (r.rows[0]) set(r.rows[0]);
    },
    async remove(id) {
      if ((await pool.query(`delete from ${table} where id = $1 returning id`, [id])).rows[0]) model.delete(id);
    },
  };
  const loop = (async () => {
    for (const r of (await pool.query(`select ${list} from ${table}`)).rows) set(r);
    while (!stop) {
      w.n++;
      try {
        if ((await step(w)) !== false) writes++;
      } catch (err) {
        errors.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    model,
    errors,
    get writes() {
      return writes;
    },
    async stop() {
      stop = true;
      await loop;
      await pool.end();
    },
    /** The rows the table must hold, in id order. */
    expected: () => [...model.values()].sort((a, b) => Number(a.split(' ')[0]) - Number(b.split(' ')[0])),
  };
}
