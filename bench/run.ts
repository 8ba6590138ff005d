// The benchmark: `npm run bench -- --rows N [--repeats R] [--rate OPS] [--baseline-seconds S]
// [--extras serial,lock,pause:50,batch:5000] [--reseed] [--drop-template] [--skip-partman]`.
// It measures every figure of issue 15's table in one run, on one machine, the same rows for every
// contender (each on its own clone of one seeded template database, kept for the next run):
//   ceiling   one `INSERT INTO <partitioned table, final primary key and secondary indexes, same
//             partitions, no foreign keys> SELECT * FROM revenues`; beside it the same with the
//             foreign keys present, and the bare table (keys only) then CREATE INDEX + ADD FOREIGN KEY
//   partman   pg_partman's partition_data_proc moving the same rows into a pg_partman parent
//   ours      the switchover workflow with the product's default settings (and, first repeat only,
//             the `--extras`), on a real dev server and worker process, while bench/writer.ts writes
//             200 single-row statements/s on one connection. Spans come from the workflow history:
//             copy stage, re-check, indexes, verification, analyze, cutover; right when the workflow
//             waits for approval, count(*) of both tables (median of 3), then VACUUM both and an
//             index-only count of both (median of 3); then approve; writer p99 in the 15 s before
//             the switchover, during the copy stage and from approve to done; history events.
// Ratios are paired within each repeat; the report gives their medians. Output: bench/out/*.json,
// bench/results/rows-<N>.{md,svg,summary.json} and latest.{md,svg} (bench/report.ts renders them).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Client } from '@temporalio/client';
import { preflightPlan } from '../activities/preflight';
import { prepareSql } from '../src/plansql';
import { deferredIndex } from '../src/copysql';
import { switchoverInput } from '../src/input';
import { admin, ADMIN_URL, dbUrl, template, withDb } from './db';
import { startStack } from './stack';
import { approveSignal, statusQuery } from '../src/shared';
import { qname } from '../src/sqlgen';
import type { TablePlan } from '../src/types';
import type { SwitchoverReport } from '../workflows/switchover';
import {
  renderMarkdown,
  readSummaries,
  renderSvg,
  summary,
  writerWindow,
  type BenchResult,
  type Ceiling,
  type OursRun,
  type Repeat,
  type Scaling,
} from './report';
import type { WriterResult } from './writer';
import { perStage, startSampler } from './resources';

const ROOT = join(__dirname, '..');
const TABLE = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' } as const;
const TASK_QUEUE = 'ps-bench';

const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wall clock in epoch ms (sub-ms), comparable with the history's event times and the writer's. */
const now = () => performance.timeOrigin + performance.now();
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function timed(c: pg.Client, sql: string): Promise<number> {
  const t = performance.now();
  await c.query(sql);
  return (performance.now() - t) / 1000;
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

/**
 * The ceilings, on the same partitioned table as ours (prepareSql: same partitions, final primary key):
 * - `seconds`, issue 15 row 1: secondary indexes present, NO foreign keys, one INSERT … SELECT *;
 * - `withFkSeconds`: the same with the foreign keys present too (this bench's ceiling until issue 15);
 * - bare: keys only, INSERT … SELECT *, then CREATE INDEX and ADD FOREIGN KEY on the parent.
 */
async function ceiling(tpl: string, db: string, withFk: boolean): Promise<Ceiling> {
  await clone(tpl, db);
  try {
    return await withDb(db, async (c) => {
      const tp = await planFor(c, 'default');
      const part = qname(tp.schema, tp.names.partitioned);
      const insert = `insert into ${part} select * from ${qname(tp.schema, tp.table)}`;
      for (const s of prepareSql(tp)) await c.query(s);
      const indexes = tp.indexes.filter(deferredIndex);
      const fks = tp.foreignKeys.map((f) => `alter table ${part} add constraint "${f.name}" ${f.definition}`);
      for (const i of indexes) await c.query(i.createSql);
      await c.query('checkpoint');
      let t = performance.now();
      const rows = (await c.query(insert)).rowCount ?? 0;
      const seconds = (performance.now() - t) / 1000;

      let withFkSeconds: number | null = null;
      if (withFk && fks.length) {
        await c.query(`truncate ${part}`);
        for (const s of fks) await c.query(s);
        await c.query('checkpoint');
        withFkSeconds = await timed(c, insert);
        for (const f of tp.foreignKeys) await c.query(`alter table ${part} drop constraint "${f.name}"`);
      } else if (withFk) withFkSeconds = seconds;

      await c.query(`truncate ${part}`);
      for (const i of indexes) await c.query(`drop index ${qname(tp.schema, i.tempName)}`);
      await c.query('checkpoint');
      const bareInsertSeconds = await timed(c, insert);
      t = performance.now();
      for (const i of indexes) await c.query(i.createSql);
      const bareIndexSeconds = (performance.now() - t) / 1000;
      t = performance.now();
      for (const s of fks) await c.query(s);
      const bareFkSeconds = (performance.now() - t) / 1000;
      return {
        seconds: r3(seconds),
        withFkSeconds: withFkSeconds === null ? null : r3(withFkSeconds),
        bareInsertSeconds: r3(bareInsertSeconds),
        bareIndexSeconds: r3(bareIndexSeconds),
        bareFkSeconds: r3(bareFkSeconds),
        rows,
      };
    });
  } finally {
    await drop(db);
  }
}

/** pg_partman 4.x/5.x: a native parent like ours, then partition_data_proc from the legacy table, no wait between batches. */
async function partman(tpl: string, db: string): Promise<Repeat['partman']> {
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
      for (const i of tp.indexes.filter(deferredIndex))
        await c.query(i.createSql.replace(qname(tp.schema, tp.names.partitioned), 'revenues_pm').replace(/INDEX IF NOT EXISTS "[^"]+"/, 'INDEX'));
      const major = Number(version.split('.')[0]);
      if (major >= 5) {
        await c.query(`select partman.create_parent('public.revenues_pm', 'occurred_at', '1 month', p_premake := 6, p_start_partition := $1)`, [min]);
      } else {
        await c.query(`select partman.create_parent('public.revenues_pm', 'occurred_at', 'native', 'monthly', p_premake := 6, p_start_partition := $1)`, [min]);
      }
      await c.query('checkpoint');
      const seconds = await timed(
        c,
        `call partman.partition_data_proc('public.revenues_pm', p_wait := 0, p_source_table := 'public.revenues', p_quiet := true)`,
      );
      const rows = Number((await c.query('select count(*) from revenues_pm')).rows[0].count);
      const left = Number((await c.query('select count(*) from revenues')).rows[0].count);
      if (left !== 0) throw new Error(`pg_partman left ${left} rows in the source table`);
      return { seconds: r3(seconds), rows, version };
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

const evMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

interface Span {
  type: string;
  started: number;
  ended: number;
}
/** Activity spans (last attempt started → completed) from the history, by activity type. */
function activitySpans(events: any[]): Span[] {
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const spans: Span[] = [];
  for (const e of events) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(id, e.activityTaskScheduledEventAttributes.activityType.name);
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), evMs(e.eventTime));
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const sid = String(done.scheduledEventId);
      spans.push({ type: scheduled.get(sid)!, started: started.get(sid)!, ended: evMs(e.eventTime) });
    }
  }
  return spans;
}

/**
 * Activity types by stage. The copy stage runs from the first copyRange start to the last
 * copyRange / copyRecheck / index or foreign-key activity end. Verification: checksum and verify
 * activities that start after the copy stage ended (the PRE-FLIGHT checksum before the copy is not
 * verification; one running inside the copy stage is listed with the other activities, marked so).
 * Analyze and any other activity type between the copy and the cutover are listed on their own.
 */
const STAGE_OF = (type: string): 'copy' | 'recheck' | 'indexes' | 'verify' | 'analyze' | 'cutover' | 'other' =>
  type === 'copyRange'
    ? 'copy'
    : /recheck/i.test(type)
      ? 'recheck'
      : /analy[sz]e/i.test(type)
        ? 'analyze'
        : /index|foreign/i.test(type)
          ? 'indexes'
          : /verify|checksum/i.test(type)
            ? 'verify'
            : /cutover/i.test(type)
              ? 'cutover'
              : 'other';

function stages(spans: Span[]) {
  const copyStart = Math.min(...spans.filter((s) => s.type === 'copyRange').map((s) => s.started));
  const after = spans.filter((s) => s.started >= copyStart);
  const of = (stage: string) => after.filter((s) => STAGE_OF(s.type) === stage);
  const extent = (ss: Span[]) => (ss.length ? { start: Math.min(...ss.map((s) => s.started)), end: Math.max(...ss.map((s) => s.ended)) } : null);
  const secs = (ss: Span[]) => {
    const e = extent(ss);
    return e ? r3((e.end - e.start) / 1000) : null;
  };
  const copyEnd = Math.max(...[...of('copy'), ...of('recheck'), ...of('indexes')].map((s) => s.ended));
  const cutoverStart = extent(of('cutover'))?.start ?? Infinity;
  const verify = of('verify').filter((s) => s.started >= copyEnd);
  const others = new Map<string, Span[]>();
  const inside = of('verify')
    .filter((s) => s.started < copyEnd)
    .map((s) => ({ ...s, type: `${s.type} (inside the copy stage)` }));
  for (const s of [...of('other').filter((x) => x.started < cutoverStart), ...inside]) others.set(s.type, [...(others.get(s.type) ?? []), s]);
  const before = new Map<string, Span[]>();
  for (const sp of spans.filter((x) => x.started < copyStart)) before.set(sp.type, [...(before.get(sp.type) ?? []), sp]);
  const windows = (
    [
      ['copy', extent(of('copy'))],
      ['re-check', extent(of('recheck'))],
      ['indexes & foreign keys', extent(of('indexes'))],
      ['verification', extent(verify)],
      ['analyze', extent(of('analyze'))],
    ] as const
  ).flatMap(([stage, e]) => (e ? [{ stage, ...e }] : []));
  return {
    copyStart,
    copyEnd,
    windows,
    beforeCopy: [...before].map(([type, ss]) => ({ type, seconds: secs(ss)! })),
    copyStageSeconds: r3((copyEnd - copyStart) / 1000),
    parts: {
      copy: secs(of('copy')),
      recheck: secs(of('recheck')),
      indexes: secs(of('indexes')),
      verify: secs(verify),
      analyze: secs(of('analyze')),
      cutover: secs(of('cutover')),
      other: [...others].map(([type, ss]) => ({ type, seconds: secs(ss)! })),
    },
    verifyTypes: [...new Set(verify.map((s) => s.type))],
  };
}

/** The writer child (bench/writer.ts): resolves once it writes; stop() returns every op it measured. */
async function startWriter(url: string, rate: number): Promise<{ stop: () => Promise<WriterResult>; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'writer.ts'), url, String(rate)], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let result: WriterResult | undefined;
  const got = new Promise<WriterResult>((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m?.result) resolve((result = m.result as WriterResult));
    });
    child.once('exit', (code) => (result ? undefined : reject(new Error(`bench/writer.ts exited ${code} before reporting`))));
  });
  got.catch(() => undefined); // awaited by stop(); a writer that dies early must not crash the bench before that
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: any) => m?.ready && resolve());
    child.once('exit', (code) => reject(new Error(`bench/writer.ts exited ${code} before it started writing`)));
  });
  return {
    child,
    stop: async () => {
      if (child.connected) child.send('stop');
      return got;
    },
  };
}

/** The count(*) figures, read when the workflow waits for approval: plain, then VACUUM and index-only. */
async function counts(c: pg.Client, legacy: string, partitioned: string) {
  const plain: number[] = [];
  const each: [number, number][] = [];
  for (let i = 0; i < 3; i++) {
    const a = await timed(c, `select count(*) from ${legacy}`);
    const b = await timed(c, `select count(*) from ${partitioned}`);
    plain.push(a + b);
    each.push([a, b]);
  }
  const vacuumSeconds = (await timed(c, `vacuum ${legacy}`)) + (await timed(c, `vacuum ${partitioned}`));
  await c.query('set enable_seqscan = off');
  const plan = (await c.query(`explain select count(*) from ${partitioned}`)).rows.map((r) => Object.values(r)[0]).join(' ');
  const indexOnly: number[] = [];
  for (let i = 0; i < 3; i++) indexOnly.push((await timed(c, `select count(*) from ${legacy}`)) + (await timed(c, `select count(*) from ${partitioned}`)));
  await c.query('reset enable_seqscan');
  const m = median(plain);
  const k = plain.indexOf(m) >= 0 ? plain.indexOf(m) : 0;
  return {
    countSeconds: r3(m),
    countLegacySeconds: r3(each[k][0]),
    countPartitionedSeconds: r3(each[k][1]),
    vacuumSeconds: r3(vacuumSeconds),
    indexOnlyCountSeconds: r3(median(indexOnly)),
    indexOnlyPlan: /Index Only Scan/.test(plan),
  };
}

export interface RunSpec {
  label: string;
  headline: boolean;
  /** Input fields beside the defaults (empty for the headline: the product's default settings). */
  input: Record<string, unknown>;
  firstRepeatOnly: boolean;
  /** No writer during the run: the copy has nobody to protect (issue 23 item 2). */
  quiet?: boolean;
}

/** One switchover on a fresh clone, with the application writer running, timed from its history. */
async function ours(client: Client, tpl: string, db: string, run: RunSpec, opts: { rate: number; baselineMs: number }, worker: ChildProcess): Promise<OursRun> {
  await clone(tpl, db);
  const tp = await withDb(db, (c) => planFor(c, db));
  const legacyName = qname(tp.schema, tp.table);
  const partitionedName = qname(tp.schema, tp.names.partitioned);
  const sampler = new pg.Client({ connectionString: dbUrl(db), application_name: 'ps-bench-sampler' });
  await sampler.connect();
  const writer = run.quiet
    ? { stop: async (): Promise<WriterResult> => ({ rate: 0, ops: [], errors: [] }), child: null }
    : await startWriter(dbUrl(db), opts.rate);
  const t0 = now();
  const walClient = new pg.Client({ connectionString: dbUrl(db), application_name: 'ps-bench-sampler' });
  await walClient.connect();
  const resources = startSampler(walClient, worker.pid!);
  const rel = (t: number) => r2((t - t0) / 1000);
  const phases: { phase: string; t: number }[] = [];
  const throughput: { t: number; rows: number }[] = [];
  let writerResult: WriterResult | undefined;
  let maxRss = 0;
  const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, memoryOf(worker.pid!).rssMb || 0)), 250);
  try {
    // One second to settle (connection, plan cache), then the baseline the copy is compared with.
    await sleep(1000 + opts.baselineMs);
    const workflowId = `bench-${db}-${Date.now()}`;
    const handle = await client.workflow.start('switchover', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [{ tables: [TABLE], database: db, backup: 'none', approval: { required: true, timeout: '1h' }, ...run.input }],
    });
    let phase = '';
    let approved = false;
    let countFigures: Awaited<ReturnType<typeof counts>> | undefined;
    const result = handle.result();
    let finished = false;
    result.then(
      () => (finished = true),
      () => (finished = true),
    );
    while (!finished) {
      const s = await handle.query(statusQuery).catch(() => undefined);
      if (s && s.phase !== phase) {
        phase = s.phase;
        phases.push({ phase, t: rel(now()) });
        if (phase === 'awaiting_approval' && !approved) {
          // The statistics run on while approval waits; the counts below would wait for their
          // locks (VACUUM) and the approve for them, so both come once they are in.
          for (let st = s; Object.values(st?.statistics ?? {}).includes('gathering'); await sleep(50)) st = await handle.query(statusQuery).catch(() => st);
          phases.push({ phase: 'statistics', t: rel(now()) });
          // Right after the switchover's verification, before the cutover: what counting costs.
          countFigures = await counts(sampler, legacyName, partitionedName);
          approved = true;
          phases.push({ phase: 'approved', t: rel(now()) });
          await handle.signal(approveSignal, { by: 'bench' });
        }
      }
      if (phase === 'copy') {
        const r = await sampler
          .query(`select coalesce(sum(rows_copied), 0)::bigint as n from partition_switchover.copy_progress where workflow_id = $1::text`, [workflowId])
          .catch(() => undefined);
        if (r) throughput.push({ t: rel(now()), rows: Number(r.rows[0].n) });
      }
      await sleep(200);
    }
    const done: SwitchoverReport = await result;
    phases.push({ phase: 'done', t: rel(now()) });
    await sleep(1000);
    writerResult = await writer.stop();

    const events = (await handle.fetchHistory()).events ?? [];
    const spans = activitySpans(events);
    const st = stages(spans);
    const wfStart = evMs(events[0]?.eventTime);
    const approveAt = evMs(events.find((e: any) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve')?.eventTime);
    const doneAt = evMs(events[events.length - 1]?.eventTime);
    const samples = await resources.stop();
    const toApprovalSeconds = toApproval(phases, (wfStart - t0) / 1000);
    const toStatisticsSeconds = toApproval(phases, (wfStart - t0) / 1000, 'statistics');
    const resourceUse = perStage(samples, [
      { stage: 'start → copy (preflight, claim, checksums, prepare, triggers)', start: wfStart, end: st.copyStart },
      { stage: 'copy stage', start: st.copyStart, end: st.copyEnd },
      ...st.windows,
      ...(toApprovalSeconds !== null ? [{ stage: 'start → awaiting_approval', start: wfStart, end: wfStart + toApprovalSeconds * 1000 }] : []),
      { stage: 'approve → done (cutover)', start: approveAt, end: doneAt },
    ]);
    // Every op the writer measured, for re-analysis (bench/out/ is not committed).
    const outDir = join(__dirname, 'out');
    mkdirSync(outDir, { recursive: true });
    const opsFile = join(outDir, `writer-${workflowId}.json`);
    writeFileSync(
      opsFile,
      JSON.stringify({
        workflowId,
        label: run.label,
        t0,
        workflowStart: wfStart,
        copyStage: [st.copyStart, st.copyEnd],
        approveAt,
        doneAt,
        columns: ['sentAtEpochMs', 'dueAtEpochMs', 'latencyMs', 'kind (insert, update, delete)', 'ok'],
        ops: writerResult.ops,
      }),
    );
    const table = done.tables[0] as any;
    const cut = table?.cutover ?? null;
    const ops = writerResult.ops;
    return {
      label: run.label,
      headline: run.headline,
      input: run.input,
      rows: table?.copy?.rows ?? null,
      copyStageSeconds: st.copyStageSeconds,
      toApprovalSeconds,
      toStatisticsSeconds,
      parts: st.parts,
      beforeCopy: st.beforeCopy,
      resources: resourceUse,
      verifyTypes: st.verifyTypes,
      verifySeconds: st.parts.verify,
      repaired: table?.copy?.recheck?.repaired ?? null,
      verifyOk: table?.verification?.ok ?? null,
      counts: countFigures ?? null,
      cutover: {
        lockMs: cut?.lockMs ?? null,
        lockWaitMs: cut?.lockWaitMs ?? null,
        attempts: cut?.attempts ?? null,
        windowMs: r2(doneAt - approveAt),
      },
      historyEvents: events.length,
      worker: { peakMb: memoryOf(worker.pid!).peakMb, rssMb: maxRss },
      writer: {
        rate: opts.rate,
        baselineSeconds: opts.baselineMs / 1000,
        baseline: writerWindow(ops, wfStart - opts.baselineMs, wfStart),
        copy: writerWindow(ops, st.copyStart, st.copyEnd),
        cutover: writerWindow(ops, approveAt, doneAt),
        total: ops.length,
        failures: ops.filter((o) => !o[4]).length,
        errors: writerResult.errors.slice(0, 5),
        opsFile: opsFile.slice(ROOT.length + 1),
      },
      timeline: {
        phases,
        throughput,
        copyStage: [rel(st.copyStart), rel(st.copyEnd)],
        writer: perSecond(ops, t0),
      },
    };
  } finally {
    clearInterval(rssTimer);
    if (!writerResult) {
      await writer.stop().catch(() => undefined);
      writer.child?.kill();
    }
    await resources.stop().catch(() => undefined);
    await walClient.end().catch(() => undefined);
    await sampler.end().catch(() => undefined);
    await drop(db);
  }
}

/** Seconds from the workflow's start (`startT`, seconds since t0) to its first phase `phase` (awaiting_approval); null if it never got there. */
function toApproval(phases: { phase: string; t: number }[], startT: number, phase = 'awaiting_approval'): number | null {
  const at = phases.find((p) => p.phase === phase)?.t;
  return at === undefined ? null : r2(at - startT);
}

/** The writer's latency per 1 s window (for the chart), t in seconds since t0. */
function perSecond(ops: WriterResult['ops'], t0: number) {
  const by = new Map<number, number[]>();
  for (const o of ops) {
    const k = Math.floor((o[0] - t0) / 1000);
    by.set(k, [...(by.get(k) ?? []), o[2]]);
  }
  return [...by]
    .sort((a, b) => a[0] - b[0])
    .map(([k, lat]) => {
      const s = lat.sort((a, b) => a - b);
      return { t: k + 0.5, p50: r2(s[Math.floor(s.length / 2)]), p99: r2(s[Math.max(0, Math.ceil(s.length * 0.99) - 1)]), ops: s.length };
    });
}

/** autovacuum on or off for the whole server (`null`: back to its configuration files), applied at once. */
async function setAutovacuum(to: string | null) {
  await admin(to === null ? 'alter system reset autovacuum' : `alter system set autovacuum = ${to === 'on' ? 'on' : 'off'}`);
  await admin('select pg_reload_conf()');
  log(`autovacuum ${to ?? 'back to the server configuration'} (alter system, reloaded)`);
}

function machine(): BenchResult['machine'] {
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

/** `--extras`: serial (parallelism 1), lock (copyMode lock), pause:<ms> (throttle.pauseMs), batch:<n> (batchSize), fixed (adaptive throttle off), quiet / quiet-fixed (the same two with no writer running). */
function extraRuns(spec: string): RunSpec[] {
  return spec
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x && x !== 'none')
    .map((x): RunSpec => {
      const [kind, arg] = x.split(':');
      const extra = (label: string, input: Record<string, unknown>): RunSpec => ({ label, headline: false, input, firstRepeatOnly: true });
      if (kind === 'serial') return extra('defaults, 1 copy stream', { throttle: { parallelism: 1 } });
      if (kind === 'lock') return extra('defaults, copyMode lock', { copyMode: 'lock' });
      if (kind === 'pause') return extra(`defaults, pause ${Number(arg ?? 50)} ms per batch`, { throttle: { pauseMs: Number(arg ?? 50) } });
      if (kind === 'batch') return extra(`defaults, batch ${Number(arg).toLocaleString('en-US')}`, { batchSize: Number(arg) });
      if (kind === 'fixed') return extra('adaptive throttle off', { throttle: { adaptive: false } });
      if (kind === 'quiet') return { ...extra('defaults, nothing else writes', {}), quiet: true };
      if (kind === 'quiet-fixed') return { ...extra('adaptive throttle off, nothing else writes', { throttle: { adaptive: false } }), quiet: true };
      throw new Error(`--extras: unknown run "${x}" (serial, lock, pause:<ms>, batch:<rows>, fixed, quiet, quiet-fixed, none)`);
    });
}

async function main() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      /** Default 3 below 2M rows, 1 from 2M rows. */
      repeats: { type: 'string' },
      rate: { type: 'string', default: '200' },
      'baseline-seconds': { type: 'string', default: '15' },
      /** Extra runs of ours, first repeat only (see extraRuns). */
      extras: { type: 'string', default: 'serial,pause:50' },
      /** Also time the ceiling with the foreign keys present (this bench's ceiling before issue 15). */
      'skip-fk-ceiling': { type: 'boolean', default: false },
      reseed: { type: 'boolean', default: false },
      'skip-partman': { type: 'boolean', default: false },
      /** Drop the seeded template database at the end (default: kept, reused by the next run). */
      'drop-template': { type: 'boolean', default: false },
      /** on / off for this run (ALTER SYSTEM, reset at the end); default: the server's setting. */
      autovacuum: { type: 'string' },
    },
  });
  if (values.autovacuum !== undefined && !['on', 'off'].includes(values.autovacuum))
    throw new Error(`--autovacuum must be on or off, got ${values.autovacuum}`);
  const rows = Number(values.rows);
  if (!Number.isInteger(rows) || rows < 1000) throw new Error(`--rows must be an integer >= 1000, got ${values.rows}`);
  const repeats = Number(values.repeats ?? (rows < 2_000_000 ? 3 : 1));
  const rate = Number(values.rate);
  const baselineMs = Number(values['baseline-seconds']) * 1000;
  const runs: RunSpec[] = [{ label: 'defaults', headline: true, input: {}, firstRepeatOnly: false }, ...extraRuns(values.extras!)];

  let partmanNote: string | null = null;
  if (!values['skip-partman']) {
    const setup = spawnSync('bash', [join(__dirname, 'setup.sh')], {
      stdio: ['ignore', 'inherit', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, BENCH_DATABASE_URL: ADMIN_URL },
    });
    if (setup.status !== 0) {
      partmanNote = (setup.stderr || `bench/setup.sh exited ${setup.status}`).trim();
      console.error(partmanNote);
    }
  } else partmanNote = 'skipped (--skip-partman)';

  const m = machine();
  const server = (await admin('show autovacuum')).rows[0].autovacuum as string;
  const autovacuumSet = values.autovacuum !== undefined && values.autovacuum !== server;
  if (autovacuumSet) await setAutovacuum(values.autovacuum!);
  m.autovacuum = autovacuumSet ? `${values.autovacuum} (set by the bench for this run; the server's own setting is ${server})` : server;
  log(
    `machine: ${m.nproc} cores, ${m.memoryGb} GB, PostgreSQL ${m.postgres}; ${rows.toLocaleString()} rows, ${repeats} repeat(s), writer ${rate} ops/s on one connection`,
  );
  const tpl = await template(rows, values.reseed!, log);

  const dbName = (rep: number, i: number) => `ps_bench_r${rep}_${i}`;
  const env: NodeJS.ProcessEnv = { ...process.env, TASK_QUEUE };
  for (let rep = 0; rep < repeats; rep++) runs.forEach((_, i) => (env[`DATABASE_URL_${dbName(rep, i).toUpperCase()}`] = dbUrl(dbName(rep, i))));

  log('starting the Temporal dev server (project CLI) and a worker process');
  const stack = await startStack(env);
  const { client, worker } = stack;

  const repeatsOut: Repeat[] = [];
  const failedRuns: BenchResult['failedRuns'] = [];
  let workerPeakMb = NaN;
  try {
    for (let rep = 0; rep < repeats; rep++) {
      log(`repeat ${rep + 1}/${repeats}: ceiling`);
      const ceil = await ceiling(tpl, `ps_bench_ceiling_${rep}`, !values['skip-fk-ceiling']);
      log(
        `  ceiling ${ceil.seconds.toFixed(2)} s (with foreign keys ${ceil.withFkSeconds?.toFixed(2) ?? '–'} s; bare ${ceil.bareInsertSeconds.toFixed(2)} + indexes ${ceil.bareIndexSeconds.toFixed(2)} + foreign keys ${ceil.bareFkSeconds.toFixed(2)} s)`,
      );
      let pm: Repeat['partman'] = { skipped: partmanNote ?? 'not run' };
      if (!partmanNote) {
        log(`repeat ${rep + 1}/${repeats}: pg_partman partition_data_proc`);
        pm = await partman(tpl, `ps_bench_partman_${rep}`);
        log(`  pg_partman ${'seconds' in pm ? `${pm.seconds.toFixed(2)} s` : pm.skipped}`);
      }
      const oursRuns: OursRun[] = [];
      for (const [i, r] of runs.entries()) {
        if (r.firstRepeatOnly && rep > 0) continue;
        log(`repeat ${rep + 1}/${repeats}: ours, ${r.label}`);
        let o: OursRun;
        try {
          o = await ours(client, tpl, dbName(rep, i), r, { rate, baselineMs }, worker);
        } catch (err) {
          // One failed switchover (e.g. product code mid-change) must not lose the other figures.
          // The whole chain: a WorkflowFailedError says only "Workflow execution failed"; its causes say why.
          const chain: string[] = [];
          for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) chain.push(e.message?.split('\n')[0] ?? String(e));
          const error = chain.join(': ');
          log(`  FAILED: ${error}`);
          failedRuns.push({ repeat: rep + 1, label: r.label, error });
          continue;
        }
        const p = o.parts;
        log(
          `  copy stage ${o.copyStageSeconds} s (copy ${p.copy} + recheck ${p.recheck ?? '–'} + indexes ${p.indexes}), verify ${o.verifySeconds} s, ` +
            `count ${o.counts?.countSeconds} s, lock ${o.cutover.lockMs} ms (wait ${o.cutover.lockWaitMs ?? '–'}), writer p99 ${o.writer.baseline.p99} → ${o.writer.copy.p99} ms, cutover ${o.writer.cutover.p99} ms`,
        );
        oursRuns.push(o);
      }
      repeatsOut.push({ ceiling: ceil, partman: pm, ours: oursRuns });
    }
  } finally {
    if (autovacuumSet) await setAutovacuum(null);
    workerPeakMb = memoryOf(worker.pid!).peakMb;
    await stack.stop();
    if (values['drop-template']) await drop(tpl);
    if (repeatsOut.length === 0) console.error(stack.workerErr());
    log(`worker peak memory ${workerPeakMb} MB`);
  }

  const result: BenchResult = {
    version: 2,
    at: new Date().toISOString(),
    rows,
    repeats,
    writerRatePerSec: rate,
    baselineSeconds: baselineMs / 1000,
    machine: m,
    partmanNote,
    failedRuns,
    workerPeakMb,
    runs: repeatsOut,
  };
  const outDir = join(__dirname, 'out');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `bench-${rows}-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(jsonPath, JSON.stringify(result, null, 2));
  const resultsDir = join(__dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `rows-${rows}.summary.json`), JSON.stringify({ rows, at: result.at, ...summary(result) }, null, 2));
  const others: Scaling[] = readSummaries(resultsDir);
  const md = renderMarkdown(result, others, `rows-${rows}.svg`);
  const svg = renderSvg(result);
  writeFileSync(join(resultsDir, `rows-${rows}.md`), md);
  writeFileSync(join(resultsDir, `rows-${rows}.svg`), svg);
  writeFileSync(join(resultsDir, 'latest.md'), renderMarkdown(result, others, 'latest.svg'));
  writeFileSync(join(resultsDir, 'latest.svg'), svg);
  console.log(md);
  log(`wrote ${jsonPath}, bench/results/rows-${rows}.{md,svg,summary.json}, bench/results/latest.{md,svg}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
