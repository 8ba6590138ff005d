// The benchmark: `npm run bench -- --rows N [--repeats R] [--rate OPS] [--modes recheck,lock]
// [--batch-size N] [--batch-sweep 5000,50000] [--throttled-pause-ms 50] [--reseed] [--drop-template]
// [--skip-partman]`. One run, one machine, the same rows for every contender (each on its own clone
// of one seeded template database, kept for the next run):
//   ceiling   one INSERT INTO <identically partitioned table, final indexes and foreign keys> SELECT * FROM revenues
//   partman   pg_partman's partition_data_proc moving the same rows into a pg_partman parent
//   ours      the switchover workflow on a real dev server and worker process, dual-write triggers
//             installed and the live writer running: copy stage serial and parallel, verification,
//             cutover lock, history events, worker peak memory, writer latency per phase
// Ratios are paired within each repeat; the report gives their medians. Output: bench/out/*.json,
// bench/results/latest.md and latest.svg (bench/report.ts renders them).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { preflightPlan, prepareSql } from '../activities/preflight';
import { deferredIndex } from '../src/copysql';
import { switchoverInput } from '../src/input';
import { startLoad, type LoadHandle, type LoadReport } from '../demo/load';
import { seed } from '../demo/seed';
import { SwitchoverPhase, SwitchoverTables, approveSignal, statusQuery } from '../src/shared';
import { qname } from '../src/sqlgen';
import { devServerExecutable } from '../src/temporal-cli';
import type { TablePlan } from '../src/types';
import type { SwitchoverReport } from '../workflows/switchover';
import { renderMarkdown, renderSvg, summary, type BenchResult, type OursRun, type Repeat, type Scaling } from './report';

const ROOT = join(__dirname, '..');
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TABLE = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' } as const;
const TASK_QUEUE = 'ps-bench';

const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;

function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withDb<T>(name: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl(name), application_name: 'ps-bench' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const admin = (sql: string) => withDb(new URL(ADMIN_URL).pathname.slice(1) || 'postgres', (c) => c.query(sql));

async function timed(c: pg.Client, sql: string): Promise<number> {
  const t = performance.now();
  await c.query(sql);
  return (performance.now() - t) / 1000;
}

/** The seeded template: reused while it holds exactly `rows` revenues (`--reseed` forces a new one). */
async function template(rows: number, reseed: boolean): Promise<string> {
  const name = `ps_bench_seed_${rows}`;
  const exists = (await admin(`select 1 from pg_database where datname = '${name}'`)).rowCount;
  if (exists && !reseed) {
    const n = await withDb(name, async (c) => Number((await c.query('select count(*) from revenues')).rows[0].count)).catch(() => -1);
    if (n === rows) {
      log(`reusing template ${name}`);
      return name;
    }
  }
  await admin(`drop database if exists ${name} with (force)`);
  await admin(`create database ${name}`);
  log(`seeding ${rows.toLocaleString()} rows into ${name} (once; reused by later runs)`);
  await withDb(name, async (c) => {
    const r = await seed(c, { rows, years: 3 });
    log(`seeded in ${r.seconds.toFixed(1)} s`);
    await c.query('vacuum analyze');
  });
  return name;
}

async function clone(tpl: string, name: string): Promise<void> {
  await admin(`drop database if exists ${name} with (force)`);
  await admin(`create database ${name} template ${tpl}`);
  await withDb(name, (c) => c.query('checkpoint'));
}
const drop = (name: string) => admin(`drop database if exists ${name} with (force)`);

async function planFor(c: pg.Client, database: string): Promise<TablePlan> {
  return (await preflightPlan(c, switchoverInput.parse({ tables: [TABLE], database }))).tables[0];
}

/** The ceiling: the same partitioned table as ours (partitions, keys, FKs, final indexes), one INSERT ... SELECT. */
async function ceiling(tpl: string, db: string): Promise<{ seconds: number; indexesAfterSeconds: number; insertNoIndexSeconds: number; rows: number }> {
  await clone(tpl, db);
  try {
    return await withDb(db, async (c) => {
      const tp = await planFor(c, 'default');
      const part = qname(tp.schema, tp.names.partitioned);
      const cols = tp.insertColumns.map((x) => `"${x}"`).join(', ');
      for (const s of prepareSql(tp)) await c.query(s);
      // The final table: secondary indexes and foreign keys present, as after our switchover.
      const indexes = tp.indexes.filter(deferredIndex).map((i) => i.createSql);
      const fks = tp.foreignKeys.map((f) => `alter table ${part} add constraint "${f.name}" ${f.definition}`);
      for (const s of [...indexes, ...fks]) await c.query(s);
      await c.query('checkpoint');
      const t = performance.now();
      const rows = (await c.query(`insert into ${part} (${cols}) select ${cols} from ${qname(tp.schema, tp.table)}`)).rowCount ?? 0;
      const seconds = (performance.now() - t) / 1000;
      // The same into the bare table (keys only), then CREATE INDEX and ADD FOREIGN KEY on the
      // parent: the best one statement can do when writers may wait (both block them).
      await c.query(`truncate ${part}`);
      for (const i of tp.indexes.filter(deferredIndex)) await c.query(`drop index ${qname(tp.schema, i.tempName)}`);
      for (const f of tp.foreignKeys) await c.query(`alter table ${part} drop constraint "${f.name}"`);
      await c.query('checkpoint');
      const insertNoIndexSeconds = await timed(c, `insert into ${part} (${cols}) select ${cols} from ${qname(tp.schema, tp.table)}`);
      let indexesAfterSeconds = 0;
      for (const s of [...indexes, ...fks]) indexesAfterSeconds += await timed(c, s);
      return { seconds, insertNoIndexSeconds, indexesAfterSeconds, rows };
    });
  } finally {
    await drop(db);
  }
}

/** pg_partman 4.x/5.x: a native parent like ours, then partition_data_proc from the legacy table, no wait between batches. */
async function partman(tpl: string, db: string): Promise<{ seconds: number; rows: number; version: string } | { skipped: string }> {
  await clone(tpl, db);
  try {
    return await withDb(db, async (c) => {
      await c.query('create schema partman');
      await c.query('create extension pg_partman schema partman');
      const version = (await c.query(`select extversion from pg_extension where extname = 'pg_partman'`)).rows[0].extversion as string;
      const tp = await planFor(c, 'default');
      const min = (await c.query(`select date_trunc('month', min(occurred_at))::text as m from revenues`)).rows[0].m as string;
      await c.query(`create table revenues_pm (like revenues including defaults including constraints) partition by range (occurred_at)`);
      await c.query(`alter table revenues_pm add primary key (id, occurred_at)`);
      for (const f of tp.foreignKeys) await c.query(`alter table revenues_pm add constraint "pm_${f.name}" ${f.definition}`);
      for (const i of tp.indexes.filter(deferredIndex)) await c.query(i.createSql.replace(qname(tp.schema, tp.names.partitioned), 'revenues_pm').replace(/INDEX IF NOT EXISTS "[^"]+"/, 'INDEX'));
      const major = Number(version.split('.')[0]);
      if (major >= 5) {
        await c.query(`select partman.create_parent('public.revenues_pm', 'occurred_at', '1 month', p_premake := 6, p_start_partition := $1)`, [min]);
      } else {
        await c.query(`select partman.create_parent('public.revenues_pm', 'occurred_at', 'native', 'monthly', p_premake := 6, p_start_partition := $1)`, [min]);
      }
      await c.query('checkpoint');
      const seconds = await timed(c, `call partman.partition_data_proc('public.revenues_pm', p_wait := 0, p_source_table := 'public.revenues', p_quiet := true)`);
      const rows = Number((await c.query('select count(*) from revenues_pm')).rows[0].count);
      const left = Number((await c.query('select count(*) from revenues')).rows[0].count);
      if (left !== 0) throw new Error(`pg_partman left ${left} rows in the source table`);
      return { seconds, rows, version };
    });
  } catch (err) {
    return { skipped: `pg_partman run failed: ${(err as Error).message}` };
  } finally {
    await drop(db);
  }
}

/** Peak and current resident memory of a process (Linux /proc), in MB. */
function memoryOf(pid: number): { peakMb: number; rssMb: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
    return { peakMb: r2(kb('VmHWM') / 1024), rssMb: r2(kb('VmRSS') / 1024) };
  } catch {
    return { peakMb: NaN, rssMb: NaN };
  }
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

interface Span { type: string; started: number; ended: number }
/** Activity spans (started → completed) from the history, by activity type. */
function activitySpans(events: any[]): Span[] {
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const spans: Span[] = [];
  for (const e of events) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(id, e.activityTaskScheduledEventAttributes.activityType.name);
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e.eventTime));
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const sid = String(done.scheduledEventId);
      spans.push({ type: scheduled.get(sid)!, started: started.get(sid)!, ended: ms(e.eventTime) });
    }
  }
  return spans;
}

/** One switchover on a fresh clone, with the live writer running, timed from its history. */
async function ours(
  client: Client,
  tpl: string,
  db: string,
  run: { label: string; parallelism: number; copyMode: 'recheck' | 'lock'; batchSize: number; pauseMs?: number; rate: number; baselineMs: number },
  worker: ChildProcess,
): Promise<OursRun> {
  await clone(tpl, db);
  const load: LoadHandle = startLoad({ connectionString: dbUrl(db), ratePerSec: run.rate, concurrency: 4, seed: 7 });
  const sampler = new pg.Client({ connectionString: dbUrl(db), application_name: 'ps-bench-sampler' });
  await sampler.connect();
  const t0 = performance.now();
  const rel = (s: number) => r2((s - t0) / 1000);
  const phases: { phase: string; t: number }[] = [];
  const throughput: { t: number; rows: number }[] = [];
  let report: SwitchoverReport | undefined;
  let loadReport: LoadReport | undefined;
  // The worker's resident memory while this switchover runs (its peak since start includes
  // bundling the workflow code, which has nothing to do with rows).
  let maxRss = 0;
  const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, memoryOf(worker.pid!).rssMb || 0)), 250);
  try {
    load.mark('baseline');
    await sleep(run.baselineMs);
    const workflowId = `bench-${db}-${Date.now()}`;
    const handle = await client.workflow.start('switchover', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [
        {
          tables: [TABLE],
          database: db,
          backup: 'none',
          batchSize: run.batchSize,
          copyMode: run.copyMode,
          throttle: { parallelism: run.parallelism, pauseMs: run.pauseMs ?? 0 },
          approval: { required: true, timeout: '1h' },
        },
      ],
    });
    let phase = '';
    let approved = false;
    const result = handle.result();
    let finished = false;
    result.then(() => (finished = true), () => (finished = true));
    while (!finished) {
      const s = await handle.query(statusQuery).catch(() => undefined);
      if (s && s.phase !== phase) {
        phase = s.phase;
        phases.push({ phase, t: rel(performance.now()) });
        if (['copy', 'verify'].includes(phase)) load.mark(phase);
        if (phase === 'awaiting_approval' && !approved) {
          approved = true;
          load.mark('cutover');
          await handle.signal(approveSignal, { by: 'bench' });
        }
      }
      if (phase === 'copy') {
        // Rows copied so far: the copy's own position rows, committed with each batch.
        const r = await sampler
          .query(`select coalesce(sum(rows_copied), 0)::bigint as n from partition_switchover.copy_progress where workflow_id = $1::text`, [workflowId])
          .catch(() => undefined);
        if (r) throughput.push({ t: rel(performance.now()), rows: Number(r.rows[0].n) });
      }
      await sleep(200);
    }
    const done: SwitchoverReport = await result;
    report = done;
    phases.push({ phase: 'done', t: rel(performance.now()) });
    await sleep(1000);
    load.mark('after');
    await sleep(1000);
    loadReport = await load.stop();

    const events = (await handle.fetchHistory()).events ?? [];
    const spans = activitySpans(events);
    const first = (t: string) => Math.min(...spans.filter((s) => s.type === t).map((s) => s.started));
    const last = (t: string) => Math.max(...spans.filter((s) => s.type === t).map((s) => s.ended));
    const copyStart = first('copyRange');
    const copyEnd = Math.max(last('copyRange'), spans.some((s) => s.type === 'buildIndexes') ? last('buildIndexes') : 0);
    const span = (t: string) => (spans.some((s) => s.type === t) ? r2((last(t) - first(t)) / 1000) : null);
    const table = done.tables[0];

    // The plain scan to compare verification with: count(*) of both tables, median of 3.
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await sampler.query('select count(*) from revenues_legacy');
      await sampler.query('select count(*) from revenues');
      counts.push((performance.now() - t) / 1000);
    }
    const seg = loadReport.segments;
    return {
      label: run.label,
      parallelism: run.parallelism,
      copyMode: run.copyMode,
      batchSize: run.batchSize,
      rows: table.copy.rows,
      copyStageSeconds: r2((copyEnd - copyStart) / 1000),
      copyRangeSeconds: span('copyRange'),
      recheckSeconds: span('copyRecheck'),
      indexSeconds: span('buildIndexes'),
      repaired: table.copy.recheck?.repaired ?? 0,
      verifySeconds: span('verifyTable'),
      verifyOk: table.verification?.ok ?? false,
      countBothSeconds: r2(median(counts)),
      cutoverLockMs: r2(table.cutover?.lockMs ?? NaN),
      historyEvents: events.length,
      worker: { peakMb: memoryOf(worker.pid!).peakMb, rssMb: maxRss },
      writer: {
        baseline: seg.baseline,
        copy: seg.copy,
        verify: seg.verify,
        cutover: seg.cutover,
        failures: loadReport.failures,
        errors: loadReport.errors.slice(0, 5),
      },
      timeline: {
        phases,
        throughput,
        writer: loadReport.windows.map((w) => ({ t: w.t / 1000, p50: w.p50, p99: w.p99, ops: w.ops })),
      },
    };
  } finally {
    clearInterval(rssTimer);
    if (!loadReport) await load.stop().catch(() => undefined);
    await sampler.end().catch(() => undefined);
    await drop(db);
  }
}

function machine() {
  const pgVersion = spawnSync('psql', [ADMIN_URL, '-Atc', 'show server_version'], { encoding: 'utf8' }).stdout.trim();
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGb: r2(totalmem() / 1024 ** 3),
    postgres: pgVersion || 'unknown',
    node: process.version,
    loadAverageAtStart: spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.trim().split(' ').slice(0, 3).join(' '),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      repeats: { type: 'string' },
      rate: { type: 'string', default: '200' },
      modes: { type: 'string', default: 'recheck,lock' },
      'batch-size': { type: 'string', default: '20000' },
      /** Extra runs of `<first mode> parallel` with these batch sizes (first repeat only). */
      'batch-sweep': { type: 'string' },
      /** One more run of `<first mode> parallel` with throttle.pauseMs (0: none). */
      'throttled-pause-ms': { type: 'string', default: '50' },
      'baseline-seconds': { type: 'string', default: '8' },
      reseed: { type: 'boolean', default: false },
      'skip-partman': { type: 'boolean', default: false },
      /** Drop the seeded template database at the end (default: kept, reused by the next run). */
      'drop-template': { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000) throw new Error(`--rows must be an integer >= 1000, got ${values.rows}`);
  const repeats = Number(values.repeats ?? (rows <= 2_000_000 ? 3 : 1));
  const modes = values.modes!.split(',') as ('recheck' | 'lock')[];
  const batchSize = Number(values['batch-size']);
  const rate = Number(values.rate);

  let partmanNote: string | null = null;
  if (!values['skip-partman']) {
    const setup = spawnSync('bash', [join(__dirname, 'setup.sh')], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', env: { ...process.env, BENCH_DATABASE_URL: ADMIN_URL } });
    if (setup.status !== 0) {
      partmanNote = (setup.stderr || `bench/setup.sh exited ${setup.status}`).trim();
      console.error(partmanNote);
    }
  } else partmanNote = 'skipped (--skip-partman)';

  const m = machine();
  log(`machine: ${m.nproc} cores, ${m.memoryGb} GB, PostgreSQL ${m.postgres}; ${rows.toLocaleString()} rows, ${repeats} repeat(s), writer ${rate} ops/s`);
  const tpl = await template(rows, values.reseed!);

  // Every database the worker may be asked for: one target per run of ours.
  const runs: { label: string; parallelism: number; copyMode: 'recheck' | 'lock'; batchSize?: number; pauseMs?: number; firstRepeatOnly?: boolean }[] = [];
  for (const mode of modes) {
    runs.push({ label: `${mode} serial`, parallelism: 1, copyMode: mode });
    runs.push({ label: `${mode} parallel`, parallelism: 2, copyMode: mode });
  }
  // The throttle's price and effect: the same with a pause after every batch.
  const pause = Number(values['throttled-pause-ms']);
  if (pause > 0) runs.push({ label: `${modes[0]} parallel, pause ${pause} ms`, parallelism: 2, copyMode: modes[0], pauseMs: pause });
  for (const size of (values['batch-sweep'] ?? '').split(',').filter(Boolean).map(Number)) {
    runs.push({ label: `${modes[0]} parallel, batch ${size.toLocaleString('en-US')}`, parallelism: 2, copyMode: modes[0], batchSize: size, firstRepeatOnly: true });
  }
  const dbName = (rep: number, i: number) => `ps_bench_r${rep}_${i}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TASK_QUEUE };
  for (let rep = 0; rep < repeats; rep++) runs.forEach((_, i) => (env[`DATABASE_URL_${dbName(rep, i).toUpperCase()}`] = dbUrl(dbName(rep, i))));

  log('starting the Temporal dev server (project CLI) and a worker process');
  const executable = devServerExecutable();
  const temporal = await TestWorkflowEnvironment.createLocal({
    server: { ...(executable ? { executable } : {}), searchAttributes: [SwitchoverPhase, SwitchoverTables], extraArgs: ['--log-level', 'error'] },
  });
  env.TEMPORAL_ADDRESS = temporal.address;
  const worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let workerErr = '';
  worker.stderr!.on('data', (d) => (workerErr = (workerErr + d.toString()).slice(-4000)));
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });

  const repeatsOut: Repeat[] = [];
  try {
    for (let rep = 0; rep < repeats; rep++) {
      log(`repeat ${rep + 1}/${repeats}: ceiling`);
      const ceil = await ceiling(tpl, `ps_bench_ceiling_${rep}`);
      log(`  ceiling ${ceil.seconds.toFixed(2)} s (no secondary index ${ceil.insertNoIndexSeconds.toFixed(2)} s + indexes ${ceil.indexesAfterSeconds.toFixed(2)} s)`);
      let pm: Repeat['partman'] = { skipped: partmanNote ?? 'not run' };
      if (!partmanNote) {
        log(`repeat ${rep + 1}/${repeats}: pg_partman partition_data_proc`);
        pm = await partman(tpl, `ps_bench_partman_${rep}`);
        log(`  pg_partman ${'seconds' in pm ? `${pm.seconds.toFixed(2)} s` : pm.skipped}`);
      }
      const oursRuns: OursRun[] = [];
      for (const [i, r] of runs.entries()) {
        log(`repeat ${rep + 1}/${repeats}: ours, ${r.label}`);
        if (r.firstRepeatOnly && rep > 0) continue;
        const o = await ours(client, tpl, dbName(rep, i), { ...r, batchSize: r.batchSize ?? batchSize, rate, baselineMs: Number(values['baseline-seconds']) * 1000 }, worker);
        log(`  copy stage ${o.copyStageSeconds} s (copy ${o.copyRangeSeconds} + recheck ${o.recheckSeconds ?? '-'} + index ${o.indexSeconds}), verify ${o.verifySeconds} s, lock ${o.cutoverLockMs} ms, repaired ${o.repaired}`);
        oursRuns.push(o);
      }
      repeatsOut.push({ ceiling: ceil, partman: pm, ours: oursRuns });
    }
  } finally {
    const mem = memoryOf(worker.pid!);
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
    await connection.close();
    await temporal.teardown();
    if (values['drop-template']) await drop(tpl);
    if (repeatsOut.length === 0) console.error(workerErr);
    log(`worker peak memory ${mem.peakMb} MB`);
    (globalThis as any).__workerPeak = mem.peakMb;
  }

  const result: BenchResult = {
    at: new Date().toISOString(),
    rows,
    repeats,
    writerRatePerSec: rate,
    batchSize,
    machine: m,
    partmanNote,
    workerPeakMb: (globalThis as any).__workerPeak,
    runs: repeatsOut,
  };
  const outDir = join(__dirname, 'out');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `bench-${rows}-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2));
  const resultsDir = join(__dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `rows-${rows}.summary.json`), JSON.stringify({ rows, at: result.at, ...summary(result) }, null, 2));
  const others: Scaling[] = readdirSync(resultsDir)
    .filter((f) => /^rows-\d+\.summary\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as Scaling);
  const md = renderMarkdown(result, others);
  const svg = renderSvg(result);
  writeFileSync(join(resultsDir, 'latest.md'), md);
  writeFileSync(join(resultsDir, 'latest.svg'), svg);
  writeFileSync(join(resultsDir, `rows-${rows}.md`), md);
  writeFileSync(join(resultsDir, `rows-${rows}.svg`), svg);
  console.log(md);
  log(`wrote ${jsonPath}, bench/results/latest.md, bench/results/latest.svg`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
