// The fleet (issue 26): one switchover per database as child workflows, canary first, waves,
// concurrency and perServer, approval scopes, halt / skip / resume / abort, continue-as-new.
// Real PostgreSQL (a dozen databases on this server), real dev server.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { fleetAbortUpdate, fleetApproveUpdate, fleetSkipUpdate, fleetStatusQuery } from '../src/shared';
import type { FleetReport, FleetStatus } from '../src/fleet';
import { ADMIN_URL, dbUrl, startTestWorker, temporalCli, uniqueId, waitFor, type TestWorker } from './helpers';

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
      const group = s.group === 0 ? [names[0]] : names.slice(1 + (s.group - 1) * 4, 1 + s.group * 4);
      expect(group.every((n) => s.databases[n].phase === 'awaiting_approval')).toBe(true);
      expect(await refusal(h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'mallory' }] }))).toMatch(/not in approval.approvers/);
      await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'alice', comment: `group ${s.group}` }] });
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
