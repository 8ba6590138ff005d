// The fleet demo (`npm run demo -- --fleet N`) and the fleet benchmark's tools: N demo databases
// cloned from one seeded template, a fleet over them (canary, waves, approvals given as the
// gates open), a progress line, and the proof per database (partitioned, equal to its legacy copy).
import pg from 'pg';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { fleetApproveUpdate, fleetStatusQuery } from '../src/shared';
import type { FleetReport, FleetStatus } from '../src/rollout';
import { DEMO_TABLES, seed } from './seed';

const withDb = (base: string, name: string) => {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
};

/** `<prefix>_NN` × n, each a clone of one seeded template (`<prefix>_template`, `rows` per table); old ones dropped first. */
export async function fleetDatabases(baseUrl: string, prefix: string, n: number, rows: number): Promise<string[]> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    const old = (await admin.query(`select datname::text as d from pg_database where datname like $1`, [`${prefix}\\_%`])).rows.map((r) => r.d);
    for (const d of old) await admin.query(`drop database ${pg.escapeIdentifier(d)} with (force)`);
    const template = `${prefix}_template`;
    await admin.query(`create database ${pg.escapeIdentifier(template)}`);
    const pool = new pg.Pool({ connectionString: withDb(baseUrl, template), max: 2 });
    await seed(pool, { rows });
    await pool.end();
    const names = Array.from({ length: n }, (_, i) => `${prefix}_${String(i).padStart(String(n).length, '0')}`);
    for (const name of names) await admin.query(`create database ${pg.escapeIdentifier(name)} template ${pg.escapeIdentifier(template)}`);
    await admin.query(`drop database ${pg.escapeIdentifier(template)}`);
    return names;
  } finally {
    await admin.end();
  }
}

/** Starts the fleet over the `<prefix>_*` databases of the server of target `default`. */
export async function startFleet(client: Client, taskQueue: string, prefix: string, extra: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  return client.workflow.start('fleet', {
    taskQueue,
    workflowId: `${prefix.replace(/_/g, '-')}-${Date.now()}`,
    args: [
      {
        tables: [...DEMO_TABLES],
        backup: 'none',
        targets: { server: 'default', like: `${prefix.replace(/_/g, '\\_')}\\_%` },
        rollout: { canary: 1, waveSize: 4, concurrency: 3, perServer: 3 },
        approval: { scope: 'wave' },
        ...extra,
      },
    ],
  });
}

/** Follows the fleet to its end, printing a progress line; approves each gate as it opens unless `manual`. */
export async function followFleet(h: WorkflowHandle, opts: { manual?: boolean; print?: boolean } = {}): Promise<FleetReport> {
  const result = h.result() as Promise<FleetReport>;
  let finished = false;
  result.then(
    () => (finished = true),
    () => (finished = true),
  );
  let announced = -1;
  while (!finished) {
    const s = (await h.query(fleetStatusQuery).catch(() => undefined)) as FleetStatus | undefined;
    if (s && opts.print !== false) {
      const counts = Object.entries(s.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      process.stdout.write(`\r  ${s.phase.padEnd(17)} group ${s.group}/${Math.max(0, s.groups - 1)}  ${counts}`.padEnd(110));
    }
    if (s?.gate?.state === 'waiting' && announced !== s.gate.group) {
      announced = s.gate.group;
      const what = s.gate.group === 0 ? 'the canary' : `wave ${s.gate.group}`;
      if (opts.manual) {
        console.log(
          `\n${what} waits for approval: npm run temporal -- workflow update execute --workflow-id ${h.workflowId} --name approve --input '{"by":"<you>"}'`,
        );
      } else {
        await h.executeUpdate(fleetApproveUpdate, { args: [{ by: 'demo', comment: `${what}, approved by npm run demo` }] }).catch(() => undefined);
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (opts.print !== false) process.stdout.write('\n');
  return result;
}

/** Per database: every demo table partitioned and equal to its legacy copy (the proof). */
export async function fleetProof(baseUrl: string, names: string[]): Promise<{ database: string; ok: boolean; detail: string }[]> {
  const out = [];
  for (const name of names) {
    const c = new pg.Client({ connectionString: withDb(baseUrl, name) });
    await c.connect();
    const bad: string[] = [];
    for (const { table } of DEMO_TABLES) {
      const [t, l] = [pg.escapeIdentifier(table), pg.escapeIdentifier(`${table}_legacy`)];
      const kind = (await c.query(`select relkind::text as k from pg_class where oid = $1::regclass`, [table])).rows[0].k;
      const diff = (await c.query(`select count(*)::int as n from ((table ${t} except all table ${l}) union all (table ${l} except all table ${t})) d`)).rows[0]
        .n;
      if (kind !== 'p' || diff) bad.push(`${table}: ${kind === 'p' ? '' : 'NOT partitioned, '}${diff} rows differ`);
    }
    await c.end();
    out.push({ database: name, ok: !bad.length, detail: bad.join('; ') || 'partitioned, equal to legacy' });
  }
  return out;
}

/** `npm run demo -- --fleet N [--rows R] [--manual-approve]`: N demo databases switched over by one fleet on the embedded stack. */
export async function runFleetDemo(n: number, rows: number, manual: boolean): Promise<number> {
  const { Runtime, DefaultLogger, NativeConnection } = await import('@temporalio/worker');
  const { createWorker } = await import('../bin/worker');
  const { connectClient } = await import('../bin/client');
  const { startDevServer } = await import('./devserver');
  const { DEFAULT_DATABASE_URL } = await import('../src/config');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const baseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL;
  const prefix = 'partition_switchover_demo_fleet';
  console.log(`Creating ${n} demo databases ${prefix}_* with ${rows.toLocaleString()} rows per table...`);
  const names = await fleetDatabases(baseUrl, prefix, n, rows);
  const server = process.env.TEMPORAL_ADDRESS ? undefined : await startDevServer();
  const address = process.env.TEMPORAL_ADDRESS ?? server!.address;
  if (server) console.log(`Temporal dev server at ${address}; UI: ${server.uiUrl}`);
  const taskQueue = 'partition-switchover-demo-fleet';
  const connection = await NativeConnection.connect({ address });
  const worker = await createWorker({ connection, taskQueue, targets: { default: baseUrl } });
  const running = worker.run();
  const client = await connectClient(address);
  const h = await startFleet(client, taskQueue, prefix);
  console.log(`Started fleet ${h.workflowId}: canary first, waves of 4, 3 at once; children ${h.workflowId}.<database>`);
  let code = 0;
  try {
    const report = await followFleet(h, { manual });
    console.log(`Fleet ${report.outcome}: ${JSON.stringify(report.counts)} (${report.runs} run${report.runs > 1 ? 's' : ''})`);
    for (const p of await fleetProof(baseUrl, names)) {
      console.log(`  ${p.database.padEnd(40)} ${p.ok ? 'OK  ' : 'FAIL'} ${p.detail}`);
      if (!p.ok) code = 1;
    }
  } catch (err) {
    console.error(`The fleet failed: ${(err as Error).message}`);
    code = 1;
  }
  worker.worker.shutdown();
  await running;
  await connection.close();
  await client.connection.close();
  await server?.stop();
  return code;
}
