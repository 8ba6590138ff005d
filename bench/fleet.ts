// The fleet's benchmark (README "A fleet"): `npm run bench:fleet -- [--databases 40] [--rows 50000]
// [--concurrency 3] [--small 200] [--small-rows 1000] [--out fleet]` (`--small 0` skips the small fleet). Each database is a clone of one seeded demo
// database (three tables of `rows` rows each). First every database's switchover alone, one after
// the other (the sum of single switchovers); then one fleet over fresh clones (canary, waves of 4,
// `concurrency` at once, perServer = concurrency, no approval) and its time against that sum
// divided by the concurrency; then a fleet of `small` small databases and its history events per
// run (continue-as-new keeps each under 10,000). Output: bench/results/fleet.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { DEMO_TABLES } from '../demo/seed';
import { fleetDatabases, fleetProof, followFleet, startFleet } from '../demo/fleet';
import type { FleetReport } from '../src/rollout';
import pg from 'pg';
import { ADMIN_URL, admin } from './db';
import { perStage, startSampler, type StageUse } from './resources';
import { startStack } from './stack';

/** The least time the fleet could take on this machine: the CPU the singles used, spread over every core. */
const cpuFloor = (use: StageUse[]) => (use.find((u) => u.stage === 'singles')?.busyCpuSeconds ?? NaN) / cpus().length;

const log = (msg: string) => console.error(`[bench:fleet ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const TASK_QUEUE = 'ps-bench-fleet';

/** Every database's switchover alone, one after the other: seconds each. */
async function singles(client: Client, names: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const name of names) {
    const t0 = performance.now();
    const r = await client.workflow.execute('switchover', {
      taskQueue: TASK_QUEUE,
      workflowId: `bench-single-${name}-${Date.now()}`,
      args: [{ tables: [...DEMO_TABLES], database: `default/${name}`, backup: 'none', approval: { required: false } }],
    });
    if ((r as { outcome: string }).outcome !== 'done') throw new Error(`single switchover of ${name}: ${JSON.stringify(r)}`);
    out.push((performance.now() - t0) / 1000);
    log(`single ${name}: ${out.at(-1)!.toFixed(2)} s`);
  }
  return out;
}

/** One fleet over `<prefix>_*`: seconds, report, and each run's history length. */
async function fleet(client: Client, prefix: string, concurrency: number) {
  const t0 = performance.now();
  const h = await startFleet(client, TASK_QUEUE, prefix, {
    rollout: { canary: 1, waveSize: 4, concurrency, perServer: concurrency },
    approval: { required: false },
  });
  const report: FleetReport = await followFleet(h, { print: false });
  const seconds = (performance.now() - t0) / 1000;
  const events: number[] = [];
  for await (const e of client.workflow.list({ query: `WorkflowId = "${h.workflowId}"` })) events.push(e.historyLength);
  return { seconds, report, events: events.reverse(), id: h.workflowId };
}

async function main() {
  const { values } = parseArgs({
    options: {
      databases: { type: 'string', default: '40' },
      rows: { type: 'string', default: '50000' },
      concurrency: { type: 'string', default: '3' },
      small: { type: 'string', default: '200' },
      'small-rows': { type: 'string', default: '1000' },
      out: { type: 'string', default: 'fleet' },
    },
  });
  const [n, rows, concurrency, small, smallRows] = [values.databases, values.rows, values.concurrency, values.small, values['small-rows']].map(Number);
  const stack = await startStack({ ...process.env, DATABASE_URL: ADMIN_URL, TASK_QUEUE });
  const lines: string[] = [];
  const probe = new pg.Client({ connectionString: ADMIN_URL });
  await probe.connect();
  const sampler = startSampler(probe, stack.worker.pid!, 250);
  const windows: { stage: string; start: number; end: number }[] = [];
  const timed = async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await fn();
    } finally {
      windows.push({ stage, start, end: Date.now() });
    }
  };
  try {
    log(`seeding ${n} + ${n} databases of ${rows} rows per table`);
    const single = await fleetDatabases(ADMIN_URL, 'ps_bench_fleet_single', n, rows);
    const each = await timed('singles', () => singles(stack.client, single));
    const sum = each.reduce((a, b) => a + b, 0);
    await fleetDatabases(ADMIN_URL, 'ps_bench_fleet_many', n, rows);
    log(`fleet of ${n}, concurrency ${concurrency}`);
    const big = await timed('fleet', () => fleet(stack.client, 'ps_bench_fleet_many', concurrency));
    const proof = await fleetProof(ADMIN_URL, Object.keys(big.report.databases));
    if (small) log(`seeding ${small} small databases of ${smallRows} rows per table`);
    if (small) await fleetDatabases(ADMIN_URL, 'ps_bench_fleet_small', small, smallRows);
    const tiny = small ? await fleet(stack.client, 'ps_bench_fleet_small', concurrency) : null;
    const use = perStage(await sampler.stop(), windows);
    const cores = (u: StageUse | undefined) =>
      u
        ? `${(u.busyCpuSeconds / u.seconds).toFixed(2)} of ${cpus().length} cores busy (postgres ${(u.postgresCpuSeconds / u.seconds).toFixed(2)}, worker ${(u.workerCpuSeconds / u.seconds).toFixed(2)})`
        : '';
    const ideal = sum / concurrency;
    const sorted = [...each].sort((a, b) => a - b);
    lines.push(
      `# Fleet benchmark`,
      '',
      `Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(1)} GB; one PostgreSQL server (${(await admin('show server_version')).rows[0].server_version}); ${new Date().toISOString()}.`,
      `Each database: the three demo tables with ${rows.toLocaleString()} rows each; \`backup: none\`, no approval; canary 1, waves of 4, concurrency ${concurrency}, perServer ${concurrency}.`,
      '',
      '| figure | measured |',
      '|---|---|',
      `| single switchovers, one after the other (${n}) | sum ${sum.toFixed(1)} s; each min ${sorted[0].toFixed(2)} s, median ${sorted[Math.floor(n / 2)].toFixed(2)} s, max ${sorted[n - 1].toFixed(2)} s |`,
      `| sum / concurrency ${concurrency} | ${ideal.toFixed(1)} s |`,
      `| fleet of ${n} | ${big.seconds.toFixed(1)} s = **${(big.seconds / ideal).toFixed(2)}x** sum / concurrency (goal ≤ 1.3x), ${(big.seconds / sum).toFixed(2)}x the sum |`,
      `| CPU floor: CPU-seconds the singles used / ${cpus().length} cores | ${cpuFloor(use).toFixed(1)} s; the fleet took ${(big.seconds / cpuFloor(use)).toFixed(2)}x that |`,
      `| CPU while the singles ran / while the fleet ran | ${cores(use.find((u) => u.stage === 'singles'))} / ${cores(use.find((u) => u.stage === 'fleet'))} |`,
      `| fleet of ${n}: outcome, counts | ${big.report.outcome}, ${JSON.stringify(big.report.counts)}; ${proof.filter((p) => p.ok).length}/${proof.length} databases partitioned and equal to legacy |`,
      `| fleet of ${n}: history events per run | ${big.events.join(', ')} (${big.events.length} run${big.events.length > 1 ? 's' : ''}) |`,
      ...(tiny
        ? [
            `| fleet of ${small} × ${smallRows.toLocaleString()} rows | ${tiny.seconds.toFixed(1)} s, ${tiny.report.outcome}, ${JSON.stringify(tiny.report.counts)} |`,
            `| fleet of ${small}: history events per run (limit 10,000) | ${tiny.events.join(', ')} (${tiny.events.length} runs; max ${Math.max(...tiny.events)}) |`,
          ]
        : []),
      '',
    );
  } catch (err) {
    log(`failed: ${(err as Error).message}\n${stack.workerErr()}`);
    throw err;
  } finally {
    await sampler.stop();
    await probe.end();
    await stack.stop();
  }
  mkdirSync(join(__dirname, 'results'), { recursive: true });
  writeFileSync(join(__dirname, 'results', `${values.out}.md`), lines.join('\n'));
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
