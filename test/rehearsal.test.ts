// The rehearsal on a second real database (target `staging`) with the live writer, while the
// worker's `default` target is another database that must come out byte for byte untouched.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { LOAD_OP_KINDS } from '../src/input';
import { LOAD_KINDS } from '../src/tableload';
import { forecastFrom, type RehearsalReport, type RehearsalStatus } from '../src/rehearsal-report';
import { seed, DEMO_TABLES } from '../demo/seed';
import { signoffSignal, statusQuery } from '../src/shared';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

const SEEDED = 1500;
const SECRET = 'pw-do-not-record-7c1f';
const TABLES = DEMO_TABLES.map((t) => t.table);
let prod: TestDb;
let staging: TestDb;
let w: TestWorker;

beforeAll(async () => {
  [prod, staging] = await Promise.all([createTestDb('ps_prod'), createTestDb('ps_staging')]);
  // pool.end() resolves before its backends have exited, so drop(... with force) can terminate
  // one; without a listener that idle client's error would fail whichever test is running.
  for (const db of [prod, staging]) db.pool.on('error', () => undefined);
  await Promise.all([seed(prod.pool, { rows: SEEDED, years: 1 }), seed(staging.pool, { rows: SEEDED, years: 1 })]);
  // `same` is the production database spelled differently: the worker must see through it.
  const same = prod.url.replace('127.0.0.1', 'localhost');
  // `socket` too, through the Unix socket with a password in the URL (which `new URL` cannot parse).
  const socket = `postgres://postgres:${SECRET}@/${prod.name}?host=/var/run/postgresql`;
  w = await startTestWorker({ default: prod.url, staging: staging.url, same, socket });
});
afterAll(async () => {
  await w?.stop();
  await Promise.all([prod?.drop(), staging?.drop()]);
});

/** pg_dump of schema and data (its per-run \restrict token removed). */
async function dump(db: TestDb): Promise<string> {
  const { stdout } = await promisify(execFile)('pg_dump', ['--no-owner', db.url], { maxBuffer: 256 * 1024 * 1024 });
  return stdout.replace(/^\\(un)?restrict .*$/gm, '');
}

async function snapshot(db: TestDb) {
  return Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await tableRows(db.pool, t)] as const)));
}

/** Everything of ours a rehearsal could leave in a schema besides audit rows. */
async function leftovers(db: TestDb) {
  const r = await db.pool.query(
    `
    select
      (select coalesce(array_agg(relname::text order by relname), '{}') from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and (relname ~ '_(partitioned|legacy|backup)$' or relname ~ '_p\\d{6}$')) as relations,
      (select coalesce(array_agg(c.relname::text || ':' || c.relkind::text order by c.relname), '{}') from pg_class c
        where c.relname = any($1::text[])) as kinds,
      (select coalesce(array_agg(tgname::text), '{}') from pg_trigger where not tgisinternal and tgname like 'ps\\_%') as triggers,
      (select coalesce(array_agg(proname::text), '{}') from pg_proc where proname ~ '_ps_(sync|mirror|guard)$') as functions,
      (select count(*)::int from partition_switchover.claims) as claims,
      (select (select count(*) from revenues where id < 0) + (select count(*) from expenses where id < 0) + (select count(*) from daily_cash_balances where id < 0))::int as marked`,
    [TABLES],
  );
  return r.rows[0];
}

test('pure parts: the writer kinds, forecast scaling', () => {
  expect([...LOAD_OP_KINDS]).toEqual([...LOAD_KINDS]);
  const f = forecastFrom(
    [{ table: 't', rows: 1000, copyMs: 500, verifyMs: 100, lockMs: 12, partitionedBytes: 200_000, legacyBytes: 0, backupBytes: 100_000 }],
    { t: 1_000_000 },
    'given',
    true,
  );
  expect(f.tables[0]).toEqual({ table: 't', rows: 1_000_000, copySeconds: 500, verifySeconds: 100, diskBytes: 300_000_000 });
  expect(f.total.lockMs).toBe(12);
  expect(f.rates).toEqual([{ table: 't', copyRowsPerSec: 2000, verifyRowsPerSec: 10000 }]);
  expect(f.basis[0]).toBe('measured on staging: t 1000 rows copied in 500 ms, verified in 100 ms');
  expect(f.basis[1]).toMatch(/^no load ran on staging/);
  const g = forecastFrom([], {}, 'given', false, { writesPerSec: 90, p99Ms: 6.5, cutoverStallMs: 41.2 });
  expect(g.load).toEqual({ writesPerSec: 90, p99Ms: 6.5, cutoverStallMs: 41.2 });
  expect(g.basis[1]).toBe('writers on staging: 90 writes/s, p99 6.5 ms; the longest write across the cutover took 41.2 ms (the stall writers see)');
});

test('full rehearsal with the live writer: ten phases pass, staging ends plain with what the writer committed, default untouched', async () => {
  const prodBefore = await dump(prod);
  const totalBefore = (
    await staging.pool.query(
      `select ((select count(*) from revenues) + (select count(*) from expenses) + (select count(*) from daily_cash_balances))::int as n`,
    )
  ).rows[0].n;
  // The application's lookup by id (no partition key), as pg_stat_statements records it on staging.
  const statements = await staging.pool
    .query('create extension if not exists pg_stat_statements')
    .then(() => staging.pool.query('select count(*) from pg_stat_statements'))
    .then(
      () => true,
      () => false,
    );
  // Called more often than any statement of the live writer, so it is among the five most frequent.
  if (statements) for (let i = 1; i <= 3000; i++) await staging.pool.query('select amount_cents from revenues where id = $1', [i]);
  const id = uniqueId('rehearsal');
  const handle = await w.client.workflow.start('rehearsal', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ tables: DEMO_TABLES, database: 'staging', batchSize: 300, load: { ratePerSec: 80, durationMs: 1500 }, forecast: { database: 'default' } }],
  });
  const waiting = await waitFor(
    async () => {
      const s = (await handle.query(statusQuery)) as RehearsalStatus;
      return ['awaiting_signoff', 'failed'].includes(s.phase) && s;
    },
    'awaiting_signoff',
    110000,
  );
  expect([waiting.phase, waiting.error]).toEqual(['awaiting_signoff', undefined]);

  const phases = waiting.rehearsal.phases;
  expect(phases.map((p) => p.phase)).toEqual([
    'environment',
    'prepare',
    'trigger_behaviour',
    'dry_run',
    'switchover',
    'application_testing',
    'performance',
    'load',
    'rollback_test',
    'signoff',
  ]);
  expect(phases.slice(0, 9).map((p) => [p.phase, p.result, p.checks.filter((c) => c.status === 'fail')])).toEqual(
    phases.slice(0, 9).map((p) => [p.phase, 'pass', []]),
  );
  for (const p of phases.slice(0, 9)) expect(p.ms).toBeGreaterThanOrEqual(0);
  expect(phases[9].result).toBe('running');
  const names = (n: number) => phases[n - 1].checks.map((c) => c.name);
  expect(names(1)).toEqual(['server version', 'extensions', 'disk', 'long transactions', 'timeouts', 'permissions']);
  expect(phases[0].checks.find((c) => c.name === 'disk')!.detail).toMatch(/statfs\(.+\) on the worker host/);
  for (const op of ['insert', 'update', 'key-moving update', 'upsert (insert)', 'upsert (update)', 'delete']) {
    expect(names(3)).toContain(`revenues ${op}`);
  }
  expect(names(6)).toEqual(expect.arrayContaining(['revenues: select by id', 'expenses: insert', 'daily_cash_balances: delete']));
  // Phase 7 EXPLAINs the application's frequent lookups without the partition key before and after cutover.
  // (The live writer's own statements by id are among them too.)
  const frequent = phases[6].checks.find(
    (c) => c.name.startsWith('revenues: frequent statement') && c.detail.startsWith('select amount_cents from revenues where id = $1'),
  );
  if (statements) {
    expect(frequent).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/^select amount_cents from revenues where id = \$1: before cutover revenues.* after it (\d+) of \1 partitions of revenues/),
    });
    const unpruned = (phases[6].details as { unpruned: { sql: string; after: { partitions: { scanned: number; total: number }[] } }[] }).unpruned;
    const lookup = unpruned.find((u) => u.sql === 'select amount_cents from revenues where id = $1')!;
    expect(lookup.after.partitions[0].scanned).toBe(lookup.after.partitions[0].total);
    expect(lookup.after.partitions[0].total).toBeGreaterThan(10);
  } else {
    console.log('pg_stat_statements is not preloaded on this server: phase 7 says so (run .ci/run to preload it)');
    expect(phases[6].checks.find((c) => c.name === 'frequent statements')?.detail).toMatch(/pg_stat_statements is not installed and loaded/);
  }
  const prunedScan = phases[6].checks.find((c) => c.name.startsWith('revenues: range scan'))!;
  expect(prunedScan).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^pruned: revenues: 1 of \d+ partitions/) });

  const report = waiting.rehearsal.report!;
  expect(report.writer!.writes).toBeGreaterThan(50);
  expect(report.writer!.failedWrites).toBe(0);
  // The writer committed during copy and verify, and again after cutover.
  expect(report.writer!.bySegment.copy.writes).toBeGreaterThan(0);
  expect(report.writer!.bySegment.after.writes).toBeGreaterThan(0);
  expect(phases[7].details).toMatchObject({ writes: report.writer!.writes, failedWrites: 0 });
  expect(phases[6].checks.find((c) => c.name === 'revenues lookups')).toMatchObject({
    status: 'warn',
    detail: expect.stringMatching(/^select by id, insert, update, delete: no partition key/),
  });
  expect(report.cutover.map((c) => c.table).sort()).toEqual([...TABLES].sort());
  expect(report.forecast!.source).toMatch(/target "default"/);
  expect(report.forecast!.tables.find((t) => t.table === 'revenues')!.rows).toBe(SEEDED);
  const meta = (await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata')).currentDetails;
  expect(meta).toContain('### Forecast for production');
  expect(meta).toContain(`--workflow-id ${id} --name signoff`);

  // Staging, before sign-off: plain tables, nothing of ours but audit rows, and exactly what the
  // load committed.
  expect(await leftovers(staging)).toEqual({
    relations: [],
    kinds: ['daily_cash_balances:r', 'expenses:r', 'revenues:r'],
    triggers: [],
    functions: [],
    claims: 0,
    marked: 0,
  });
  const w8 = report.writer!;
  const counts = (
    await staging.pool.query(
      `select ((select count(*) from revenues) + (select count(*) from expenses) + (select count(*) from daily_cash_balances))::int as total,
              (select count(*) - count(distinct (organization_id, property_id, balance_date)) from daily_cash_balances)::int as dupes`,
    )
  ).rows[0];
  // Every insert of the load's there once, every delete of it gone; nothing else added or lost.
  expect(counts.total).toBe(totalBefore + w8.byKind.insert.rows - w8.byKind.delete.rows);
  expect(counts.dupes).toBe(0);
  const truth = phases[8].details!.truth as Record<string, { rows: number }>;
  for (const t of TABLES) expect((await staging.pool.query(`select count(*)::int as n from ${t}`)).rows[0].n).toBe(truth[t].rows);

  await handle.signal(signoffSignal, { by: 'carol', comment: 'forecast fits the window' });
  const result: RehearsalReport = await handle.result();
  expect(result.outcome).toBe('signed_off');
  expect(result.signoff).toMatchObject({ by: 'carol', comment: 'forecast fits the window' });
  expect(result.phases.every((p) => p.result === 'pass')).toBe(true);
  expect(result.markdown).toContain('Signed off by carol');
  const audit = await staging.pool.query(`select stage from partition_switchover.audit where workflow_id = $1 and table_name = '(rehearsal)' order by stage`, [
    id,
  ]);
  expect(audit.rows.map((r) => r.stage)).toEqual(
    [...Array.from({ length: 10 }, (_, i) => `REHEARSAL-${String(i + 1).padStart(2, '0')}-${phases[i].phase.toUpperCase()}`), 'SIGNOFF'].sort(),
  );

  expect(await dump(prod)).toBe(prodBefore);
});

test('a smoke query whose answer changes fails the rehearsal in phase 6, and staging is put back as it was', async () => {
  const prodBefore = await dump(prod);
  const stagingBefore = await snapshot(staging);
  const handle = await w.client.workflow.start('rehearsal', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rehearsal-fail'),
    args: [
      {
        tables: DEMO_TABLES,
        database: 'staging',
        smokeSql: [`select count(*) from revenues`, `select relkind::text from pg_class where oid = 'public.revenues'::regclass`],
      },
    ],
  });
  const err = await handle.result().then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('RehearsalFailed');
  expect(cause.message).toMatch(
    /^rehearsal failed in phase 6 \(application testing\): smokeSql\[1\]: answer changed after cutover: before SELECT 1 row\(s\) \{"relkind":"r"\}; after SELECT 1 row\(s\) \{"relkind":"p"\}/,
  );
  const report = cause.details![0] as RehearsalReport;
  expect(report.failedPhase).toMatchObject({ n: 6, phase: 'application_testing' });
  expect(report.phases.map((p) => p.result)).toEqual(['pass', 'pass', 'pass', 'pass', 'pass', 'fail', 'not_run', 'not_run', 'not_run', 'not_run']);
  expect(report.phases[5].checks.find((c) => c.name === 'smokeSql[0]')!.status).toBe('ok');
  expect(report.restore!.ok).toBe(true);
  expect(report.markdown).toContain('### FAILED in phase 6: application testing');
  expect(((await handle.query(statusQuery)) as RehearsalStatus).phase).toBe('failed');

  expect((await leftovers(staging)).relations).toEqual([]);
  expect(await leftovers(staging)).toMatchObject({
    kinds: ['daily_cash_balances:r', 'expenses:r', 'revenues:r'],
    triggers: [],
    functions: [],
    claims: 0,
    marked: 0,
  });
  expect(await snapshot(staging)).toEqual(stagingBefore);
  expect(await dump(prod)).toBe(prodBefore);
});

test('staging that is the default database, or default itself, is refused at once', async () => {
  const prodBefore = await dump(prod);
  const start = (database: string) =>
    w.client.workflow
      .execute('rehearsal', { taskQueue: w.taskQueue, workflowId: uniqueId('rehearsal-refused'), args: [{ tables: DEMO_TABLES, database }] })
      .then(
        () => undefined,
        (e: WorkflowFailedError) => e.cause as ApplicationFailure,
      );
  const same = await start('same');
  expect(same?.type).toBe('InvalidInput');
  expect(same?.message).toMatch(/target "same" is the same database as "default"/);
  // The same database through a socket URL with a password: refused, and the password is in no history.
  const socketId = uniqueId('rehearsal-socket');
  const socket = await w.client.workflow
    .execute('rehearsal', { taskQueue: w.taskQueue, workflowId: socketId, args: [{ tables: DEMO_TABLES, database: 'socket' }] })
    .then(
      () => undefined,
      (e: WorkflowFailedError) => e.cause as ApplicationFailure,
    );
  expect(socket?.type).toBe('InvalidInput');
  expect(socket?.message).toMatch(new RegExp(`target "socket" is the same database as "default" \\(database "${prod.name}" on server \\d+\\)`));
  // Payloads are bytes in the history: decode them, so a secret inside one would show.
  const history = JSON.stringify(await w.client.workflow.getHandle(socketId).fetchHistory(), (_k, v) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v?.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString('utf8') : v,
  );
  expect(history).toContain('same database');
  expect(history).not.toContain(SECRET);
  expect(history).not.toContain('/var/run/postgresql');
  const dflt = await start('default');
  expect(dflt?.type).toBe('InvalidInput');
  expect(dflt?.message).toMatch(/database: must name a staging target, not "default"/);
  const unknown = await start('nowhere');
  expect(unknown).toMatchObject({ type: 'UnknownDatabase', message: expect.stringMatching(/database target "nowhere" is not configured/) });
  expect(await dump(prod)).toBe(prodBefore);
  expect((await prod.pool.query(`select to_regnamespace('partition_switchover') as s`)).rows[0].s).toBeNull();
});
