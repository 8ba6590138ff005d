// The history split (splitHistory) at scale: `npm run bench:split -- --rows N [--reseed] [--batch-size B]`.
// A clone of the seeded template (bench/db.ts, `revenues`, three years), switched over with the attach
// strategy (backup "none", no approval), then split while bench/writer.ts writes 200 single-row
// statements a second on `revenues` over one connection (dated in the last 30 days: the history
// partition, through the split's mirror, then the period partitions). Measured: the split's time
// and its phases (polled from the status query), the cutover's lock, the writer's p50/p99 in the
// 15 s before the split and during it, and failed writes. Output: bench/results/split-rows-N.md.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { admin, ADMIN_URL, dbUrl, template, withDb } from './db';
import { startStack } from './stack';
import { WRITER_KINDS, type WriterResult } from './writer';
import { splitStatusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import type { SplitReport } from '../workflows/split-history';

const TASK_QUEUE = 'ps-bench-split';
const DB = 'ps_bench_split';
const log = (msg: string) => console.error(`[bench:split ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * The writer child: resolves once it writes; stop() returns every op it measured, its times moved
 * onto this process's clock (each process's performance.timeOrigin is read from the wall clock at
 * its start, which this VM's clock adjustments can move by seconds between two processes): the
 * writer's first op is due when it says it is ready.
 */
async function startWriter(url: string, rate: number): Promise<() => Promise<WriterResult>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'writer.ts'), url, String(rate)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const got = new Promise<WriterResult>((resolve, reject) => {
    child.on('message', (m: { result?: WriterResult }) => m?.result && resolve(m.result));
    child.once('exit', (code) => reject(new Error(`bench/writer.ts exited ${code} before reporting`)));
  });
  got.catch(() => undefined);
  await new Promise<void>((resolve) => child.on('message', (m: { ready?: boolean }) => m?.ready && resolve()));
  const ready = performance.timeOrigin + performance.now();
  return async () => {
    if (child.connected) child.send('stop');
    const w = await got;
    const shift = ready - (w.ops[0]?.[1] ?? ready);
    return { ...w, ops: w.ops.map(([sent, due, ...rest]) => [sent + shift, due + shift, ...rest] as WriterResult['ops'][number]) };
  };
}

/** p50 and p99 (ms) of the writer's ops sent between `from` and `to` (epoch ms), with their count and failures. */
function latency(w: WriterResult, from: number, to: number, kind?: number) {
  const ops = w.ops.filter((o) => o[0] >= from && o[0] < to && (kind === undefined || o[3] === kind));
  const lat = ops.map((o) => o[2]).sort((a, b) => a - b);
  const at = (q: number) => r2(lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] ?? 0);
  return { ops: ops.length, failed: ops.filter((o) => !o[4]).length, p50: at(0.5), p99: at(0.99), max: r2(lat.at(-1) ?? 0) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      reseed: { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '10000' },
      keep: { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows);
  const batchSize = Number(values['batch-size']);
  const tpl = await template(rows, values.reseed!, log);
  await admin(`drop database if exists ${DB} with (force)`);
  await admin(`create database ${DB} template ${tpl}`);
  const env: NodeJS.ProcessEnv = { ...process.env, TASK_QUEUE, DATABASE_URL: ADMIN_URL, [`DATABASE_URL_${DB.toUpperCase()}`]: dbUrl(DB) };
  log('starting the Temporal dev server (project CLI) and a worker process');
  const stack = await startStack(env);
  const { client } = stack;
  try {
    log(`attach switchover of revenues (${rows.toLocaleString()} rows)`);
    const sw: SwitchoverReport = await client.workflow.execute('switchover', {
      taskQueue: TASK_QUEUE,
      workflowId: `bench-split-attach-${Date.now()}`,
      args: [
        {
          tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }],
          database: DB,
          strategy: 'attach',
          backup: 'none',
          approval: { required: false },
        },
      ],
    });
    if (sw.outcome !== 'done') throw new Error(`the attach switchover ended ${sw.outcome}`);
    const historyMb = await withDb(DB, async (c) =>
      Math.round(Number((await c.query(`select pg_total_relation_size('revenues_history') as b`)).rows[0].b) / 1048576),
    );
    await withDb(DB, (c) => c.query('checkpoint'));
    log('writer: 15 s baseline');
    const stopWriter = await startWriter(dbUrl(DB), 200);
    const tBase = performance.timeOrigin + performance.now();
    await sleep(15_000);
    const t0 = performance.timeOrigin + performance.now();
    const handle = await client.workflow.start('splitHistory', {
      taskQueue: TASK_QUEUE,
      workflowId: `bench-split-${Date.now()}`,
      args: [{ database: DB, table: 'revenues', batchSize }],
    });
    const phases: { phase: string; at: number }[] = [];
    const done = handle.result() as Promise<SplitReport>;
    let finished = false;
    done.finally(() => (finished = true)).catch(() => undefined);
    while (!finished) {
      const s = await handle.query(splitStatusQuery).catch(() => null);
      if (s && s.phase !== phases.at(-1)?.phase) {
        phases.push({ phase: s.phase, at: performance.timeOrigin + performance.now() });
        log(`  phase ${s.phase}`);
      }
      await sleep(200);
    }
    const report = await done;
    const t1 = performance.timeOrigin + performance.now();
    await sleep(10_000);
    const w = await stopWriter();
    const t2 = performance.timeOrigin + performance.now();
    const phaseSeconds = phases.map((p, i) => `${p.phase} ${r2(((phases[i + 1]?.at ?? t1) - p.at) / 1000)}`).join(', ');
    const perPhase = phases
      .map((p, i) => [p.phase, latency(w, p.at, phases[i + 1]?.at ?? t1)] as const)
      .map(([phase, l]) => `${phase} ${l.p99} / ${l.max}`)
      .join(', ');
    const copied = report.periods.reduce((s, p) => s + p.rowsCopied, 0);
    const base = latency(w, tBase, t0);
    const during = latency(w, t0, t1);
    const after = latency(w, t1, t2);
    const pgVersion = await withDb(DB, async (c) => (await c.query('show server_version')).rows[0].server_version as string);
    const load = (await import('node:os'))
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    const md = [
      `# splitHistory, ${rows.toLocaleString('en-US')} rows`,
      '',
      `${new Date().toISOString()}; PostgreSQL ${pgVersion}; \`revenues\` on a clone of the seeded template, switched over with \`"strategy": "attach"\` ` +
        `(history partition ${historyMb} MB with its indexes), then split with batchSize ${batchSize} and the default adaptive throttle while ` +
        `bench/writer.ts sends 200 single-row writes a second (dated in the last 30 days: the history partition). Load average at the end: ${load}.`,
      '',
      '| rows copied | periods | split start → done (s) | cutover lock (ms) | writer p50 / p99 / max before (ms) | during the split | after cutover | failed writes |',
      '|---:|---:|---:|---:|---|---|---|---:|',
      `| ${copied.toLocaleString('en-US')} | ${report.periods.length} | ${r2((t1 - t0) / 1000)} | ${r2(report.cutover!.lockMs)} | ` +
        `${base.p50} / ${base.p99} / ${base.max} | ${during.p50} / ${during.p99} / ${during.max} | ${after.p50} / ${after.p99} / ${after.max} | ${base.failed + during.failed + after.failed} |`,
      '',
      `Seconds per phase: ${phaseSeconds}. Writer p99 / max per phase (ms): ${perPhase}. Writer ops: ${base.ops} before, ${during.ops} during, ${after.ops} after. p50 / p99 by kind ` +
        `(before; during; after): ${WRITER_KINDS.map((k, i) => [latency(w, tBase, t0, i), latency(w, t0, t1, i), latency(w, t1, t2, i)].map((x) => `${x.p50} / ${x.p99}`).join('; ') + ` ${k}`).join(', ')}.` +
        `${w.errors.length ? ` Errors: ${w.errors.join('; ')}` : ''}`,
      '',
      'Reproduce: `npm run bench:split -- --rows N`.',
      '',
    ].join('\n');
    const dir = join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `split-rows-${rows}.md`), md);
    console.log(md);
  } catch (err) {
    console.error(stack.workerErr());
    throw err;
  } finally {
    await stack.stop();
    if (!values.keep) await admin(`drop database if exists ${DB} with (force)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
