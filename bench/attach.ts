// The attach strategy against the copy strategy: `npm run bench:attach -- --rows N [--reseed]`.
// One seeded template database (demo/seed, `revenues`, the same template bench/run.ts keeps),
// cloned once per strategy; on each clone the switchover workflow runs on a real dev server and
// worker process (backup "none" for both), and we measure: time from start to awaiting_approval,
// the cutover's lock time, and the extra disk at approval (pg_database_size and the sum of the
// relations' sizes, against the clone before the start). Output: bench/results/attach-rows-N.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Client } from '@temporalio/client';
import { admin, ADMIN_URL, dbUrl, template, withDb } from './db';
import { startStack } from './stack';
import { approveSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';

const TABLE = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' } as const;
const TASK_QUEUE = 'ps-bench-attach';
const STRATEGIES = ['attach', 'copy'] as const;

const log = (msg: string) => console.error(`[bench:attach ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

/** Disk now: the database's size and the sum of its relations' sizes (tables, indexes, TOAST). */
async function disk(c: pg.Client): Promise<{ database: number; relations: number }> {
  await c.query('checkpoint');
  const r = (
    await c.query(
      `select pg_database_size(current_database())::bigint as database,
              (select coalesce(sum(pg_relation_size(c.oid)), 0) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname not in ('pg_catalog', 'information_schema') and c.relkind in ('r', 'i', 't', 'm'))::bigint as relations`,
    )
  ).rows[0];
  return { database: Number(r.database), relations: Number(r.relations) };
}

interface StrategyRun {
  strategy: (typeof STRATEGIES)[number];
  toApprovalSeconds: number;
  cutoverLockMs: number;
  cutoverAttempts: number;
  extraDatabaseMb: number;
  extraRelationsMb: number;
  totalSeconds: number;
  /** Seconds per phase (the workflow's phaseMs). */
  phases: Record<string, number>;
}

async function runOne(client: Client, tpl: string, strategy: StrategyRun['strategy'], db: string): Promise<StrategyRun> {
  await admin(`drop database if exists ${db} with (force)`);
  await admin(`create database ${db} template ${tpl}`);
  try {
    const before = await withDb(db, disk);
    const t0 = performance.now();
    const handle = await client.workflow.start('switchover', {
      taskQueue: TASK_QUEUE,
      workflowId: `bench-attach-${strategy}-${Date.now()}`,
      args: [{ tables: [TABLE], database: db, strategy, backup: 'none' }],
    });
    for (;;) {
      const s = await handle.query(statusQuery);
      if (s.phase === 'awaiting_approval') break;
      if (s.phase === 'failed' || s.phase === 'rolled_back') throw new Error(`${strategy}: the switchover ended in ${s.phase}: ${s.error ?? ''}`);
      await sleep(100);
    }
    const toApprovalSeconds = (performance.now() - t0) / 1000;
    const at = await withDb(db, disk);
    await handle.signal(approveSignal, { by: 'bench' });
    const report: SwitchoverReport = await handle.result();
    const cut = report.tables[0].cutover!;
    return {
      strategy,
      toApprovalSeconds: Math.round(toApprovalSeconds * 100) / 100,
      cutoverLockMs: Math.round(cut.lockMs * 100) / 100,
      cutoverAttempts: cut.attempts,
      extraDatabaseMb: mb(at.database - before.database),
      extraRelationsMb: mb(at.relations - before.relations),
      totalSeconds: Math.round(((performance.now() - t0) / 1000) * 100) / 100,
      phases: Object.fromEntries(Object.entries(report.phaseMs).map(([k, v]) => [k, Math.round(v / 10) / 100])),
    };
  } finally {
    await admin(`drop database if exists ${db} with (force)`);
  }
}

function markdown(rows: number, pg: string, runs: StrategyRun[], tableMb: number): string {
  const line = (r: StrategyRun) =>
    `| ${r.strategy} | ${r.toApprovalSeconds} | ${r.cutoverLockMs} (${r.cutoverAttempts} attempt${r.cutoverAttempts === 1 ? '' : 's'}) | ${r.extraDatabaseMb} | ${r.extraRelationsMb} | ${r.totalSeconds} | ` +
    `${Object.entries(r.phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} |`;
  return [
    `# Attach against copy, ${rows.toLocaleString('en-US')} rows`,
    '',
    `${new Date().toISOString()}; PostgreSQL ${pg}; \`revenues\` (${tableMb} MB with its indexes) on a clone of one seeded template per strategy; ` +
      `backup "none"; no live writer. Extra disk: at awaiting_approval against the clone before the start.`,
    '',
    '| strategy | start → awaiting_approval (s) | cutover lock (ms) | extra disk, pg_database_size (MB) | extra disk, relations (MB) | start → done (s) | seconds per phase |',
    '|---|---|---|---|---|---|---|',
    ...runs.map(line),
    '',
    'Reproduce: `npm run bench:attach -- --rows N`.',
    '',
  ].join('\n');
}

async function main() {
  const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' }, reseed: { type: 'boolean', default: false } } });
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000) throw new Error(`--rows must be an integer >= 1000, got ${values.rows}`);
  const tpl = await template(rows, values.reseed!, log);
  const pgVersion = await withDb(tpl, async (c) => (await c.query('show server_version')).rows[0].server_version as string);
  const tableMb = await withDb(tpl, async (c) => mb(Number((await c.query(`select pg_total_relation_size('revenues')::bigint as b`)).rows[0].b)));
  const dbs = Object.fromEntries(STRATEGIES.map((s) => [s, `ps_bench_attach_${s}`]));
  // The default target is the admin database: no session of ours may stay on the template (CREATE DATABASE ... TEMPLATE needs it idle).
  const env: NodeJS.ProcessEnv = { ...process.env, TASK_QUEUE, DATABASE_URL: ADMIN_URL };
  for (const name of Object.values(dbs)) env[`DATABASE_URL_${name.toUpperCase()}`] = dbUrl(name);

  log('starting the Temporal dev server (project CLI) and a worker process');
  const stack = await startStack(env);
  const { client } = stack;
  const runs: StrategyRun[] = [];
  try {
    // Warm-up, so neither strategy pays the worker's start: a run whose preflight refuses at once
    // (the admin database has no revenues table).
    await client.workflow
      .execute('switchover', { taskQueue: TASK_QUEUE, workflowId: `bench-attach-warmup-${Date.now()}`, args: [{ tables: [TABLE], dryRun: true }] })
      .catch(() => undefined);
    for (const s of STRATEGIES) {
      log(`${s}: switchover of revenues (${rows.toLocaleString()} rows)`);
      const r = await runOne(client, tpl, s, dbs[s]);
      log(`  ${s}: ${r.toApprovalSeconds} s to approval, lock ${r.cutoverLockMs} ms, extra ${r.extraDatabaseMb} MB`);
      runs.push(r);
    }
  } catch (err) {
    console.error(stack.workerErr());
    throw err;
  } finally {
    await stack.stop();
  }
  const md = markdown(rows, pgVersion, runs, tableMb);
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `attach-rows-${rows}.md`), md);
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
