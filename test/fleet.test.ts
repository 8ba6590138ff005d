// The fleet (issue 26): one switchover per database as child workflows, canary first, waves,
// concurrency and perServer, approval scopes, halt / skip / resume / abort, continue-as-new.
// Real PostgreSQL (a dozen databases on this server), real dev server.
import pg from 'pg';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { fleetAbortUpdate, fleetApproveUpdate, fleetResumeUpdate, fleetSkipUpdate, fleetStatusQuery } from '../src/shared';
import type { FleetReport, FleetStatus } from '../src/rollout';
import { ADMIN_URL, dbUrl, startTestWorker, temporalAddress, temporalCli, uniqueId, waitFor, type TestWorker } from './helpers';

let w: TestWorker;
const prefix = `ps_fleet_${randomBytes(3).toString('hex')}`;
const made: string[] = [];
const pools = new Map<string, pg.Pool>();

beforeAll(async () => {
  // Target `default` is the server's maintenance database: the fleet reaches each database as `default/<name>`.
  w = await startTestWorker({ default: ADMIN_URL });
});
afterAll(async () => {
  await w?.stop();
  for (const p of pools.values()) await p.end();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  for (const n of made) await admin.query(`drop database if exists ${n} with (force)`);
  await admin.end();
});

const pool = (name: string) => {
  let p = pools.get(name);
  if (!p) pools.set(name, (p = new pg.Pool({ connectionString: dbUrl(name), max: 3 })));
  p.on('error', () => undefined);
  return p;
};

/** `n` databases `<prefix>_<group>_NN`, each with `orders` (rows over 4 months); `broken` ones get a table the switchover refuses (no primary key). */
async function databases(group: string, n: number, opts: { broken?: number[]; rows?: number } = {}): Promise<string[]> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const names: string[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `${prefix}_${group}_${String(i).padStart(2, '0')}`;
      await admin.query(`create database ${name}`);
      made.push(name);
      names.push(name);
    }
  } finally {
    await admin.end();
  }
  for (const [i, name] of names.entries()) {
    const pk = opts.broken?.includes(i) ? '' : 'primary key';
    await pool(name).query(`
      create table orders (id bigserial ${pk}, placed_at timestamptz not null, amount_cents bigint not null);
      insert into orders (placed_at, amount_cents) select timestamptz '2026-08-01' + (g % 120) * interval '1 day', g from generate_series(1, ${opts.rows ?? 300}) g;`);
  }
  return names;
}

const WORKING = ['preflight', 'backup', 'prepare', 'triggers', 'copy', 'verify'];
const TABLES = [{ table: 'orders', partitionKey: 'placed_at', interval: 'month' }];

async function startFleet(group: string, input: Record<string, unknown>): Promise<WorkflowHandle> {
  return w.client.workflow.start('fleet', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(`fleet-${group}`),
    args: [{ tables: TABLES, backup: 'none', ...input }],
  });
}

/** The message of a refused Update ('' if it was accepted). */
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => '',
    (e: Error) => (e.cause as Error)?.message ?? e.message,
  );

const status = (h: WorkflowHandle) => h.query(fleetStatusQuery) as Promise<FleetStatus>;

/** A writer inserting and updating orders of one database until stopped; failures kept. */
function writer(name: string) {
  const c = new pg.Client({ connectionString: dbUrl(name) });
  c.on('error', () => undefined);
  const failures: string[] = [];
  let writes = 0;
  let stop = false;
  const done = (async () => {
    await c.connect();
    while (!stop) {
      try {
        await c.query(`insert into orders (placed_at, amount_cents) values (timestamptz '2026-09-15' + random() * interval '60 days', 1)`);
        await c.query(`update orders set amount_cents = amount_cents + 1 where id = (select max(id) from orders)`);
        writes += 2;
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.end();
  })();
  return { failures, stop: async () => ((stop = true), await done, writes) };
}

/** The table is partitioned and equal, row for row, to `<table>_legacy` (kept in sync by the mirror). */
async function partitionedAndEqual(name: string) {
  const p = pool(name);
  const kind = (await p.query(`select relkind::text as k from pg_class where oid = 'orders'::regclass`)).rows[0].k;
  const diff = (
    await p.query(`select count(*)::int as n from ((table orders except all table orders_legacy) union all (table orders_legacy except all table orders)) d`)
  ).rows[0].n;
  return { kind, diff };
}

test('12 databases: canary, waves of 4, concurrency 3, perServer 2; approval per wave; writers on 3 lose no write', async () => {
  const names = await databases('main', 12);
  const writers = [names[0], names[5], names[10]].map(writer);
  const h = await startFleet('main', {
    targets: { server: 'default', like: `${prefix}\\_main\\_%` },
    rollout: { canary: 1, waveSize: 4, concurrency: 3, perServer: 2 },
    approval: { scope: 'wave', approvers: ['alice'] },
  });
  let maxWorking = 0;
  let approvals = 0;
  for (;;) {
    const d = await h.describe();
    if (d.status.name !== 'RUNNING') break;
    const s = await status(h);
    // Working: before approval (an approved wave's cutovers run together, as the gate intends).
    const working = Object.values(s.databases).filter((x) => !x.outcome && WORKING.includes(x.phase)).length;
    maxWorking = Math.max(maxWorking, working);
    if (s.gate?.state === 'waiting') {
      // The gate opens only once every database of its group waits for approval.
      const g = s.gate.group;
      const group = g === 0 ? [names[0]] : names.slice(1 + (g - 1) * 4, 1 + g * 4);
      expect(group.every((n) => s.databases[n].phase === 'awaiting_approval')).toBe(true);
      expect(await refusal(h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'mallory' }] }))).toMatch(/not in approval.approvers/);
      await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'alice', comment: `group ${g}` }] });
      approvals++;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  const r: FleetReport = await h.result();
  const writes = await Promise.all(writers.map((x) => x.stop()));
  expect(r.outcome).toBe('done');
  expect(approvals).toBe(4); // the canary, then 3 waves
  expect(Object.keys(r.databases).sort()).toEqual(names);
  expect(Object.values(r.databases).every((d) => d.outcome === 'done')).toBe(true);
  // Every database of this server shares one system_identifier: perServer 2 bounds the working set below concurrency 3.
  expect(maxWorking).toBeLessThanOrEqual(2);
  expect(maxWorking).toBeGreaterThanOrEqual(1);
  for (const n of names) expect(await partitionedAndEqual(n)).toEqual({ kind: 'p', diff: 0 });
  expect(writes.every((x) => x > 0)).toBe(true);
  expect(writers.flatMap((x) => x.failures)).toEqual([]);
  // Each child is the switchover workflow with id `<fleet>.<database>`, tagged SwitchoverFleet.
  const listed = await waitFor(async () => {
    const out = JSON.parse((await temporalCli(['workflow', 'list', '--query', `SwitchoverFleet="${h.workflowId}"`, '--output', 'json'])) || '[]');
    return out.length === 12 ? out : undefined;
  }, 'children listed by SwitchoverFleet');
  expect(listed.map((x: { execution: { workflowId: string } }) => x.execution.workflowId).sort()).toEqual(names.map((n) => `${h.workflowId}.${n}`));
}, 300_000);

const relkind = async (name: string) => (await pool(name).query(`select relkind::text as k from pg_class where oid = 'orders'::regclass`)).rows[0].k;

test('scope fleet, halt on a failure in wave 2: the wave waits parked, later ones do not start; skip carries on', async () => {
  // Groups: canary [0], wave 1 [1, 2], wave 2 [3, 4], wave 3 [5]; database 3 has no primary key (preflight refuses it).
  const names = await databases('halt', 6, { broken: [3] });
  const h = await startFleet('halt', {
    targets: { databases: names.map((n) => `default/${n}`) },
    rollout: { canary: 1, waveSize: 2, concurrency: 2, perServer: 2 },
    approval: { scope: 'fleet', approvers: ['alice'] },
  });
  const key = (n: string) => `default/${n}`;
  // The canary is approved as a wave, then everything after it with one approval.
  await waitFor(async () => (await status(h)).gate?.state === 'waiting', 'the canary waits for approval');
  expect((await status(h)).gate?.group).toBe(0);
  await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'alice', comment: 'canary' }] });
  await waitFor(async () => {
    const s = await status(h);
    return s.gate?.state === 'waiting' && s.gate.group === 1 && s.databases[key(names[0])].outcome === 'done';
  }, 'the fleet approval after the canary');
  expect(Object.values((await status(h)).databases).filter((d) => d.phase !== 'pending').length).toBe(1);
  expect((await status(h)).gate).toMatchObject({ group: 1, state: 'waiting', rest: true });
  expect((await h.query<{ currentDetails: string }>('__temporal_workflow_metadata')).currentDetails).toContain(
    '**Waiting for approval** of everything after the canary',
  );
  await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'alice', comment: 'the rest' }] });

  // Halted and settled: every database ended, untouched (pending) or parked at approval; which of
  // database 4 and wave 1 got that far before database 3 failed is a matter of timing.
  const settledPhases = ['pending', 'awaiting_approval'];
  const halted = await waitFor(
    async () => {
      const s = await status(h);
      return s.phase === 'halted' && Object.values(s.databases).every((d) => d.outcome || settledPhases.includes(d.phase)) ? s : undefined;
    },
    'halted with the others untouched or parked',
    120_000,
  );
  expect(halted.halted?.databases).toEqual([key(names[3])]);
  expect(halted.databases[key(names[3])]).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/primary key/i) });
  expect(halted.databases[key(names[5])].phase).toBe('pending');
  const meta = await h.query<{ currentDetails: string }>('__temporal_workflow_metadata');
  const ended = Object.values(halted.databases).filter((d) => d.outcome).length;
  expect(meta.currentDetails).toContain(`**Halted** since ${halted.halted!.since}: ${key(names[3])} failed`);
  expect(meta.currentDetails).toMatch(new RegExp(`\\[#+-+\\] ${ended}/6 databases ended`));
  expect(meta.currentDetails).toContain(`| ${key(names[4])} | ${halted.databases[key(names[4])].phase} |`);
  // Nothing starts while halted, and wave 2's parked database is not approved (wave 1's may still
  // be on their way through a cutover approved before the halt).
  await new Promise((r) => setTimeout(r, 1500));
  const still = await status(h);
  for (const n of [names[4], names[5]]) expect(still.databases[key(n)].phase).toBe(halted.databases[key(n)].phase);
  expect(await relkind(names[3])).toBe('r');
  expect(await refusal(h.executeUpdate(fleetSkipUpdate, { args: [{ database: 'nope' }] }))).toMatch(/no database "nope"/);
  if (halted.databases[key(names[4])].phase === 'awaiting_approval') {
    expect(await refusal(h.executeUpdate(fleetSkipUpdate, { args: [{ database: key(names[4]) }] }))).toMatch(/is running/);
  }

  await h.executeUpdate(fleetSkipUpdate, { args: [{ database: key(names[3]), by: 'alice' }] });
  const r: FleetReport = await h.result();
  expect(r.outcome).toBe('done');
  expect(r.counts).toEqual({ done: 5, skipped: 1 });
  expect(r.databases[key(names[3])].outcome).toBe('skipped');
  for (const n of names.filter((_, i) => i !== 3)) expect(await partitionedAndEqual(n)).toEqual({ kind: 'p', diff: 0 });
  expect(await relkind(names[3])).toBe('r');
  // The fleet's code is deterministic: its history (gates, child phases, halt, skip) replays.
  await Worker.runReplayHistory(
    { workflowBundle: { codePath: process.env.PS_TEST_WORKFLOW_BUNDLE! }, replayName: 'fleet' },
    await h.fetchHistory(),
    h.workflowId,
  );
}, 300_000);

test('abort: the canary switched over and the parked wave are rolled back to plain tables with every write', async () => {
  const names = await databases('abort', 3);
  const before = await Promise.all(names.map(async (n) => (await pool(n).query('select count(*)::int as n from orders')).rows[0].n));
  const wr = writer(names[0]);
  const h = await startFleet('abort', {
    targets: { server: 'default', like: `${prefix}\\_abort\\_%` },
    rollout: { canary: 1, waveSize: 2 },
    approval: { scope: 'wave' },
  });
  await waitFor(async () => (await status(h)).gate?.state === 'waiting', 'the canary waits for approval');
  await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'alice' }] });
  await waitFor(async () => {
    const s = await status(h);
    return s.gate?.state === 'waiting' && s.gate.group === 1;
  }, 'wave 1 waits for approval');
  expect(await relkind(names[0])).toBe('p');
  await h.executeUpdate(fleetAbortUpdate, { args: [{ by: 'alice', reason: 'test' }] });
  const r: FleetReport = await h.result();
  const writes = await wr.stop();
  expect(r.outcome).toBe('aborted');
  expect(r.databases[names[0]]).toMatchObject({ outcome: 'rolled_back' });
  expect([r.databases[names[1]].outcome, r.databases[names[2]].outcome]).toEqual(['rejected', 'rejected']);
  for (const n of names) {
    expect(await relkind(n)).toBe('r');
    expect((await pool(n).query(`select to_regclass('orders_legacy') as t`)).rows[0].t).toBeNull();
  }
  // Every write the writer made on the canary is there (one insert per two writes).
  const after = (await pool(names[0]).query('select count(*)::int as n from orders')).rows[0].n;
  expect(wr.failures).toEqual([]);
  expect(after).toBe(before[0] + writes / 2);
  expect(await refusal(h.executeUpdate(fleetAbortUpdate, { args: [{}] }))).toMatch(/no longer running|completed|not found/i);
}, 300_000);

test('bad targets fail the fleet at once, naming them; nothing is started', async () => {
  const failure = (h: WorkflowHandle) =>
    h.result().then(
      () => 'completed',
      (e: Error) => (e.cause as Error)?.message ?? e.message,
    );
  const none = await startFleet('bad', { targets: { server: 'default', like: `${prefix}\\_nothing\\_%` } });
  expect(await failure(none)).toMatch(/no database of target "default" matches LIKE .*nothing was started/);
  const unknown = await startFleet('bad', { targets: { databases: ['nowhere'] } });
  expect(await failure(unknown)).toMatch(/database target "nowhere" is not configured on this worker; set DATABASE_URL_NOWHERE/);
  const list = JSON.parse((await temporalCli(['workflow', 'list', '--query', `WorkflowId STARTS_WITH "${none.workflowId}."`, '--output', 'json'])) || '[]');
  expect(list).toEqual([]);
});

/** `bin/worker.ts` as its own process group (killed with SIGKILL, children and all). */
function workerProcess(env: Record<string, string>): ChildProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DATABASE_URL')));
  return spawn(process.execPath, ['--import', 'tsx', 'bin/worker.ts'], {
    cwd: join(__dirname, '..'),
    env: { ...base, WORKFLOW_BUNDLE: process.env.PS_TEST_WORKFLOW_BUNDLE!, TEMPORAL_ADDRESS: temporalAddress(), ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
}
const kill = (p: ChildProcess) =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : (process.kill(-p.pid!, 'SIGKILL'), new Promise((r) => p.once('exit', r)));

test('a worker killed mid-wave resumes; continue-as-new between waves; resume after the cause is fixed', async () => {
  // Groups: canary [0], wave 1 [1, 2], wave 2 [3, 4]; database 3 lacks its primary key until the test adds it.
  const names = await databases('crash', 5, { broken: [3], rows: 2000 });
  const taskQueue = uniqueId('fleet-crash');
  const procs = [workerProcess({ DATABASE_URL: ADMIN_URL, TASK_QUEUE: taskQueue })];
  const connection = await Connection.connect({ address: temporalAddress() });
  const client = new Client({ connection });
  try {
    const h = await client.workflow.start('fleet', {
      taskQueue,
      workflowId: uniqueId('fleet-crash'),
      args: [
        {
          tables: TABLES,
          backup: 'none',
          batchSize: 200,
          throttle: { pauseMs: 100, adaptive: false },
          targets: { server: 'default', like: `${prefix}\\_crash\\_%` },
          rollout: { canary: 1, waveSize: 2, concurrency: 2, historyLimit: 10 },
          approval: { required: false },
        },
      ],
    });
    await waitFor(
      async () => {
        const s = await status(h);
        return [names[1], names[2]].some((n) => s.databases[n]?.phase === 'copy');
      },
      'wave 1 copying',
      120_000,
    );
    await kill(procs[0]);
    procs.push(workerProcess({ DATABASE_URL: ADMIN_URL, TASK_QUEUE: taskQueue }));
    await waitFor(async () => (await status(h)).phase === 'halted', 'halted on database 3', 180_000);
    expect((await status(h)).halted?.databases).toEqual([names[3]]);
    await pool(names[3]).query('alter table orders add primary key (id)');
    await h.executeUpdate(fleetResumeUpdate, { args: [{ by: 'alice' }] });
    const r: FleetReport = await h.result();
    expect(r.outcome).toBe('done');
    expect(r.counts).toEqual({ done: 5 });
    // Each wave boundary past the history limit continued as new: more than one run, each short.
    expect(r.runs).toBeGreaterThan(1);
    const runs = JSON.parse(await temporalCli(['workflow', 'list', '--query', `WorkflowId="${h.workflowId}"`, '--output', 'json']));
    expect(runs.length).toBe(r.runs);
    for (const n of names) expect(await partitionedAndEqual(n)).toEqual({ kind: 'p', diff: 0 });
  } finally {
    for (const p of procs) await kill(p);
    await connection.close();
  }
}, 400_000);

test('soak: the canary is checked after it (writes land, rows equal to legacy); a failed check halts; onFailure continue passes a failure over', async () => {
  const names = await databases('soak', 3, { broken: [2] });
  const wr = writer(names[0]);
  const ok = await startFleet('soak', {
    targets: { server: 'default', like: `${prefix}\\_soak\\_%` },
    rollout: { canary: 1, waveSize: 2, soak: '2s' },
    approval: { required: false },
    onFailure: 'continue',
  });
  await waitFor(async () => (await status(ok)).phase === 'soak', 'the canary soaks');
  const r: FleetReport = await ok.result();
  await wr.stop();
  expect(wr.failures).toEqual([]);
  expect(r.outcome).toBe('done');
  expect(r.counts).toEqual({ done: 2, failed: 1 });
  expect(r.databases[names[2]].error).toMatch(/no primary key/);
  const s = await status(ok);
  expect(s.soak).toMatchObject({ ok: true, detail: 'writes land and every table equals its legacy copy' });

  // A canary whose mirror was switched off fails its check: the fleet halts before any wave.
  const more = await databases('soakbad', 2);
  const bad = await startFleet('soakbad', {
    targets: { server: 'default', like: `${prefix}\\_soakbad\\_%` },
    rollout: { canary: 1, soak: '3s' },
    approval: { required: false },
  });
  await waitFor(async () => (await status(bad)).phase === 'soak', 'the canary soaks');
  const mirror = (await pool(more[0]).query(`select tgname::text as t from pg_trigger where tgrelid = 'orders'::regclass and tgname like '%mirror%'`)).rows[0]
    .t;
  await pool(more[0]).query(`alter table orders disable trigger ${mirror}; insert into orders (placed_at, amount_cents) values ('2026-10-01', 5)`);
  const halted = await waitFor(async () => {
    const x = await status(bad);
    return x.phase === 'halted' ? x : undefined;
  }, 'halted by the soak check');
  expect(halted.soak?.ok).toBe(false);
  expect(halted.soak?.detail).toMatch(new RegExp(`${more[0]}: orders .*NOT equal to .*orders_legacy; mirror trigger ${mirror} disabled`));
  expect(halted.databases[more[1]].phase).toBe('pending');
  await pool(more[0]).query(`alter table orders enable always trigger ${mirror}`);
  await bad.executeUpdate(fleetResumeUpdate, { args: [{ by: 'alice' }] });
  expect((await bad.result()).counts).toEqual({ done: 2 });
}, 300_000);

test("a rehearsal given a fleet's targets runs on its canary (staging's first database by name)", async () => {
  const names = await databases('reh', 2);
  const staging = await startTestWorker({ default: dbUrl(names[1]), staging: ADMIN_URL });
  try {
    const h = await staging.client.workflow.start('rehearsal', {
      taskQueue: staging.taskQueue,
      workflowId: uniqueId('fleet-rehearsal'),
      args: [{ tables: TABLES, targets: { server: 'staging', like: `${prefix}\\_reh\\_%` }, backup: 'none' }],
    });
    // The rehearsal's bookkeeping appears in the canary, never in the other database.
    const ns = (n: string) => pool(n).query(`select to_regnamespace('partition_switchover') is not null as s`);
    await waitFor(async () => (await ns(names[0])).rows[0].s, 'the rehearsal working on the canary', 120_000);
    expect((await ns(names[1])).rows[0].s).toBe(false);
    await h.cancel();
    await h.result().catch(() => undefined);
    const both = await staging.client.workflow
      .execute('rehearsal', {
        taskQueue: staging.taskQueue,
        workflowId: uniqueId('fleet-rehearsal'),
        args: [{ tables: TABLES, targets: { databases: ['staging'] }, database: 'staging' }],
      })
      .catch((e: Error) => (e.cause as Error).message);
    expect(both).toMatch(/give "targets" \(a fleet's\) or "database", not both/);
  } finally {
    await staging.stop();
  }
}, 200_000);
