// The benchmark's report: the figures of issue 15's table, a targets table, where the time goes,
// and a hand-written SVG chart, from one run's result. Pure (no I/O but the CLI below), so a saved
// JSON can be rendered again: `tsx bench/report.ts bench/out/<file>.json`.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WriterOp } from './writer';
import type { StageUse } from './resources';

export interface Ceiling {
  /** Issue 15 row 1: INSERT INTO <partitioned, final primary key and secondary indexes, no foreign keys> SELECT * FROM <table>. */
  seconds: number;
  /** The same with the foreign keys present too (null: not measured). */
  withFkSeconds: number | null;
  /** Bare table (keys only): the INSERT … SELECT *, then CREATE INDEX, then ADD FOREIGN KEY. */
  bareInsertSeconds: number;
  bareIndexSeconds: number;
  bareFkSeconds: number;
  rows: number;
}

export interface WriterWindow {
  /** Ops sent inside the window. */
  ops: number;
  failures: number;
  /** Statement latency (sent → answered), ms. */
  p50: number | null;
  p99: number | null;
  max: number | null;
  /** Latency from the op's due time (includes waiting behind the previous op on the one connection), ms. */
  p99FromDue: number | null;
}

export interface OursRun {
  label: string;
  /** The product's default settings: the run the targets are read from. */
  headline: boolean;
  input: Record<string, unknown>;
  rows: number | null;
  /** First copyRange start → last copyRange / re-check / index / foreign-key activity end (history event times). */
  copyStageSeconds: number;
  /** Workflow start → the workflow in phase awaiting_approval (the status query, polled every 200 ms): what the operator waits for. */
  toApprovalSeconds?: number | null;
  /** Start → the statistics gathered while approval waits are in (status.statistics): from then an approve cuts over at once. */
  toStatisticsSeconds?: number | null;
  /** Each stage's first start → last end, seconds (null: no such activity). */
  parts: {
    copy: number | null;
    recheck: number | null;
    indexes: number | null;
    verify: number | null;
    analyze: number | null;
    cutover: number | null;
    other: { type: string; seconds: number }[];
  };
  /** Activities before the first copyRange (preflight, claim, checksums, prepare, triggers): seconds per type. */
  beforeCopy?: { type: string; seconds: number }[];
  /** CPU (machine, postgres, worker) and WAL per stage (bench/resources.ts). */
  resources?: StageUse[];
  /** Activity types counted as verification (checksum / verify activities after the copy began). */
  verifyTypes: string[];
  verifySeconds: number | null;
  repaired: number | null;
  verifyOk: boolean | null;
  /** Read when the workflow waited for approval, before approving. */
  counts: {
    /** count(*) of the legacy table, then of the partitioned one, sequentially; median of 3. */
    countSeconds: number;
    countLegacySeconds: number;
    countPartitionedSeconds: number;
    vacuumSeconds: number;
    /** After VACUUM of both, enable_seqscan off: count(*) of both, median of 3. */
    indexOnlyCountSeconds: number;
    indexOnlyPlan: boolean;
  } | null;
  cutover: { lockMs: number | null; lockWaitMs: number | null; attempts: number | null; windowMs: number };
  historyEvents: number;
  worker: { peakMb: number; rssMb: number };
  writer: {
    rate: number;
    baselineSeconds: number;
    /** The baselineSeconds before the workflow started. */
    baseline: WriterWindow;
    /** Ops sent inside the copy stage. */
    copy: WriterWindow;
    /** Ops sent from the approve signal to the workflow's completion (history event times). */
    cutover: WriterWindow;
    total: number;
    failures: number;
    errors: string[];
    /** bench/out/writer-<workflow id>.json: every op [sent at, due at, latency, kind, ok]. */
    opsFile?: string;
  };
  timeline: {
    phases: { phase: string; t: number }[];
    throughput: { t: number; rows: number }[];
    copyStage: [number, number];
    writer: { t: number; p50: number; p99: number; ops: number }[];
  };
}

export interface Repeat {
  ceiling: Ceiling;
  partman: { seconds: number; rows: number; version: string } | { skipped: string };
  ours: OursRun[];
}

export interface BenchResult {
  version: 2;
  at: string;
  rows: number;
  repeats: number;
  writerRatePerSec: number;
  baselineSeconds: number;
  machine: { nproc: number; cpu: string; memoryGb: number; postgres: string; node: string; loadAverageAtStart: string; autovacuum?: string };
  partmanNote: string | null;
  /** Runs of ours whose switchover failed (left out of every figure). */
  failedRuns?: { repeat: number; label: string; error: string }[];
  workerPeakMb: number;
  runs: Repeat[];
}

const r2 = (x: number) => Math.round(x * 100) / 100;
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.max(0, Math.ceil(sorted.length * p) - 1)] : null);

/** The writer's ops sent in [from, to) (epoch ms): nearest-rank percentiles. */
export function writerWindow(ops: WriterOp[], from: number, to: number): WriterWindow {
  const inside = ops.filter((o) => o[0] >= from && o[0] < to);
  const lat = inside.map((o) => o[2]).sort((a, b) => a - b);
  const fromDue = inside.map((o) => o[0] + o[2] - o[1]).sort((a, b) => a - b);
  const q = (x: number | null) => (x === null ? null : r2(x));
  return {
    ops: inside.length,
    failures: inside.filter((o) => !o[4]).length,
    p50: q(pct(lat, 0.5)),
    p99: q(pct(lat, 0.99)),
    max: q(lat.length ? lat[lat.length - 1] : null),
    p99FromDue: q(pct(fromDue, 0.99)),
  };
}

const median = (xs: (number | null | undefined)[]) => {
  const s = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const num = (x: number | null | undefined) => (typeof x === 'number' ? x : NaN);
const f = (x: number | null | undefined, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '–');
const n = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const met = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? '**yes**' : '**no**');
const finite = (x: number) => Number.isFinite(x);

const headOf = (rep: Repeat) => rep.ours.find((o) => o.headline);
const heads = (r: BenchResult) => r.runs.map(headOf).filter((o): o is OursRun => !!o);
const partmanSeconds = (rep: Repeat) => ('seconds' in rep.partman ? rep.partman.seconds : NaN);
const bareSeconds = (c: Ceiling) => c.bareInsertSeconds + c.bareIndexSeconds + c.bareFkSeconds;

/** The headline figures: medians over repeats of the default-settings run, ratios paired within each repeat. */
export function summary(r: BenchResult) {
  const pair = (fn: (rep: Repeat, o: OursRun) => number) =>
    median(
      r.runs.map((rep) => {
        const o = headOf(rep);
        return o ? fn(rep, o) : NaN;
      }),
    );
  const head = heads(r);
  return {
    version: 2 as const,
    ceilingSeconds: median(r.runs.map((x) => x.ceiling.seconds)),
    ceilingWithFkSeconds: median(r.runs.map((x) => x.ceiling.withFkSeconds)),
    bareSeconds: median(r.runs.map((x) => bareSeconds(x.ceiling))),
    partmanSeconds: median(r.runs.map(partmanSeconds)),
    copyStageSeconds: median(head.map((o) => o.copyStageSeconds)),
    copyVsCeiling: pair((rep, o) => rep.ceiling.seconds / o.copyStageSeconds),
    copyVsCeilingWithFk: pair((rep, o) => num(rep.ceiling.withFkSeconds) / o.copyStageSeconds),
    copyVsBare: pair((rep, o) => bareSeconds(rep.ceiling) / o.copyStageSeconds),
    /** Start → awaiting_approval against the bare ceiling (INSERT … SELECT, one CREATE INDEX per index, the foreign keys): issue 23's goal ≤ 1.3x. */
    approvalVsBare: pair((rep, o) => num(o.toApprovalSeconds ?? null) / bareSeconds(rep.ceiling)),
    toApprovalSeconds: median(heads(r).map((o) => o.toApprovalSeconds)),
    partmanVsOurs: pair((rep, o) => partmanSeconds(rep) / o.copyStageSeconds),
    verifySeconds: median(head.map((o) => o.verifySeconds)),
    countSeconds: median(head.map((o) => o.counts?.countSeconds)),
    indexOnlyCountSeconds: median(head.map((o) => o.counts?.indexOnlyCountSeconds)),
    verifyVsCount: median(head.map((o) => num(o.verifySeconds) / num(o.counts?.countSeconds))),
    verifyVsIndexOnly: median(head.map((o) => num(o.verifySeconds) / num(o.counts?.indexOnlyCountSeconds))),
    verifyShareOfCopy: median(head.map((o) => num(o.verifySeconds) / o.copyStageSeconds)),
    p99Baseline: median(head.map((o) => o.writer.baseline.p99)),
    p99Copy: median(head.map((o) => o.writer.copy.p99)),
    p99Ratio: median(head.map((o) => num(o.writer.copy.p99) / num(o.writer.baseline.p99))),
    cutoverP99: median(head.map((o) => o.writer.cutover.p99)),
    cutoverMax: median(head.map((o) => o.writer.cutover.max)),
    lockMs: median(head.map((o) => o.cutover.lockMs)),
    lockWaitMs: median(head.map((o) => o.cutover.lockWaitMs)),
    /** Writer p99 around the cutover minus the lock time (goal ≤ 20 ms). */
    cutoverP99OverLock: median(head.map((o) => num(o.writer.cutover.p99) - num(o.cutover.lockMs))),
    historyEvents: median(head.map((o) => o.historyEvents)),
    workerRssMb: median(head.map((o) => o.worker.rssMb)),
    writerFailures: head.reduce((a, o) => a + o.writer.failures, 0),
  };
}

/** What a run keeps in bench/results/rows-<N>.summary.json for the scaling table of later runs (older files: version absent, fewer fields). */
export type Scaling = { rows: number; at: string } & Partial<ReturnType<typeof summary>>;

const isV2 = (s: Scaling) => s.version === 2;

/** History events at 1M and 10M rows, from the latest summary of each (null when one is missing). */
function historyFlat(all: Scaling[]): { at1M: number; at10M: number } | null {
  const at = (rows: number) => all.find((s) => s.rows === rows)?.historyEvents;
  const a = at(1_000_000);
  const b = at(10_000_000);
  return typeof a === 'number' && typeof b === 'number' ? { at1M: a, at10M: b } : null;
}

function scalingTable(all: Scaling[]): string[] {
  if (all.length < 2) return [];
  const L = [
    '',
    "#### As rows grow (each row count's latest run on this machine)",
    '',
    '| rows | copy stage vs ceiling | vs pg_partman | verification / count(*) | verification / index-only count | writer p99 copy / before | cutover writer p99 − lock | history events | worker memory |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  let old = false;
  for (const s of [...all].sort((a, b) => a.rows - b.rows)) {
    const v2 = isV2(s);
    old ||= !v2;
    L.push(
      `| ${s.rows.toLocaleString('en-US')}${v2 ? '' : ' (old bench¹)'} | ${v2 ? `${f(s.copyVsCeiling)}x` : '–'} | ${f(s.partmanVsOurs)}x | ${v2 ? `${f(s.verifyVsCount)}x` : '–'} | ` +
        `${f(v2 ? s.verifyVsIndexOnly : s.verifyVsCount)}x | ${f(s.p99Ratio)}x | ${v2 ? `${f(s.cutoverP99OverLock, 1)} ms` : '–'} | ${n(s.historyEvents)} | ${f(s.workerRssMb, 0)} MB |`,
    );
  }
  if (old) {
    L.push(
      '',
      '¹ Measured by this bench before issue 15 (ceiling with foreign keys, count after the run on vacuumed tables, demo/load.ts writer on 4 connections): ' +
        'only the comparable columns are shown; its verification / count is the index-only one.',
    );
  }
  return L;
}

/** Per run: copy stage and where its time goes, then what follows it. */
function whereTimeGoes(r: BenchResult): string[] {
  const L = [
    '',
    '#### Where the time goes (seconds, from the workflow history; each stage first start → last end)',
    '',
    '| repeat | run | copy stage | copy | re-check | indexes & foreign keys | rest of the copy stage² | verification | analyze | other activities | cutover activity | rows repaired |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|',
  ];
  r.runs.forEach((rep, i) => {
    for (const o of rep.ours) {
      const p = o.parts;
      const rest = o.copyStageSeconds - (p.copy ?? 0) - (p.recheck ?? 0) - (p.indexes ?? 0);
      L.push(
        `| ${i + 1} | ${o.label} | ${f(o.copyStageSeconds)} | ${f(p.copy)} | ${f(p.recheck)} | ${f(p.indexes)} | ${f(rest)} | ${f(p.verify)} | ${f(p.analyze)} | ` +
          `${p.other.map((x) => `${x.type} ${f(x.seconds)}`).join(', ') || '–'} | ${f(p.cutover)} | ${o.repaired ?? '–'} |`,
      );
    }
  });
  L.push('', '² Between and around the activities (workflow turns, overlap makes it negative).');
  return [...L, ...resourcesTable(r)];
}

/** CPU and WAL per stage, each run of the default settings (bench/resources.ts). */
function resourcesTable(r: BenchResult): string[] {
  const runs = r.runs.flatMap((rep, i) => rep.ours.filter((o) => o.headline && o.resources).map((o) => ({ i, o })));
  if (!runs.length) return [];
  const L = [
    '',
    `#### CPU and WAL per stage (default settings; ${r.machine.nproc} cores, so at most ${r.machine.nproc} CPU-seconds per second)`,
    '',
    'Before the copy (seconds per activity, repeat 1): ' + (runs[0].o.beforeCopy ?? []).map((b) => `${b.type} ${f(b.seconds)}`).join(', ') + '.',
    '',
    '| repeat | stage | seconds | machine CPU s | cores busy | postgres CPU s | worker CPU s | WAL MB | WAL MB/s |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { i, o } of runs) {
    for (const u of o.resources!) {
      const per = (x: number) => (u.seconds > 0 ? (x / u.seconds).toFixed(2) : '–');
      L.push(
        `| ${i + 1} | ${u.stage} | ${f(u.seconds)} | ${f(u.busyCpuSeconds)} | ${per(u.busyCpuSeconds)} | ${f(u.postgresCpuSeconds)} | ${f(u.workerCpuSeconds)} | ${f(u.walMb)} | ${per(u.walMb)} |`,
      );
    }
  }
  return L;
}

export function renderMarkdown(r: BenchResult, others: Scaling[] = [], svgName = 'latest.svg'): string {
  const m = r.machine;
  const s = summary(r);
  const head = heads(r);
  const all: Scaling[] = [...others.filter((o) => o.rows !== r.rows), { rows: r.rows, at: r.at, ...s }];
  const L: string[] = [];
  const perRepeat = (vals: (number | null | undefined)[], d = 2) => vals.map((v) => f(v, d)).join(', ');
  L.push(
    `### Benchmark: ${r.rows.toLocaleString('en-US')} rows of \`revenues\``,
    '',
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGb} GB memory, PostgreSQL ${m.postgres}, Node ${m.node}; load average at start ${m.loadAverageAtStart}${m.autovacuum ? `; autovacuum ${m.autovacuum}` : ''}. ` +
      `${r.rows.toLocaleString('en-US')} rows, ${r.repeats} repeat(s), medians shown, ratios paired within each repeat. ` +
      `Ours: the product's default settings (backup none), on a dev server and worker process, while bench/writer.ts writes ${r.writerRatePerSec} single-row ` +
      `statements/s (6 inserts, 3 updates, 1 delete in 10) on one connection; its baseline is the ${r.baselineSeconds} s before the switchover starts. Run at ${r.at}.`,
    '',
    '#### The figures of issue 15',
    '',
    '| figure | median | per repeat |',
    '|---|---:|---|',
  );
  const row = (what: string, vals: (number | null | undefined)[], unit: string, d = 2) => {
    const m = median(vals);
    L.push(`| ${what} | ${f(m, d)}${finite(m) && unit ? ` ${unit}` : ''} | ${perRepeat(vals, d)} |`);
  };
  row(
    'ceiling: one `INSERT INTO <partitioned, final primary key and secondary indexes, no foreign keys> SELECT * FROM revenues`',
    r.runs.map((x) => x.ceiling.seconds),
    's',
  );
  row(
    '&nbsp;&nbsp;the same with the foreign keys present',
    r.runs.map((x) => x.ceiling.withFkSeconds),
    's',
  );
  row(
    '&nbsp;&nbsp;bare table (keys only) `INSERT … SELECT *`, then `CREATE INDEX`, then `ADD FOREIGN KEY` (both block writers)',
    r.runs.map((x) => bareSeconds(x.ceiling)),
    `s (${f(median(r.runs.map((x) => x.ceiling.bareInsertSeconds)))} + ${f(median(r.runs.map((x) => x.ceiling.bareIndexSeconds)))} + ${f(median(r.runs.map((x) => x.ceiling.bareFkSeconds)))})`,
  );
  if (r.runs.some((x) => 'seconds' in x.partman)) {
    const v = r.runs.map((x) => ('version' in x.partman ? x.partman.version : '')).find(Boolean);
    row(`pg_partman ${v} \`partition_data_proc\` (p_wait 0)`, r.runs.map(partmanSeconds), 's');
  } else {
    L.push(`| pg_partman \`partition_data_proc\` | not run | ${(r.partmanNote ?? 'skipped').replace(/\n/g, ' ')} |`);
  }
  row(
    'ours: copy stage (first copy activity start → last index / foreign key built)',
    head.map((o) => o.copyStageSeconds),
    's',
  );
  row(
    `ours: verification (${[...new Set(head.flatMap((o) => o.verifyTypes))].join(', ') || 'none'})`,
    head.map((o) => o.verifySeconds),
    's',
  );
  if (head.some((o) => o.parts.analyze !== null))
    row(
      'ours: analyze',
      head.map((o) => o.parts.analyze),
      's',
    );
  row(
    '`count(*)` of the legacy table, then of the partitioned one, when the workflow waits for approval (median of 3)',
    head.map((o) => o.counts?.countSeconds),
    's',
    3,
  );
  row(
    `&nbsp;&nbsp;the same after \`VACUUM\` of both, index-only (${head.every((o) => o.counts?.indexOnlyPlan) ? 'Index Only Scan' : 'plan not always Index Only Scan'})`,
    head.map((o) => o.counts?.indexOnlyCountSeconds),
    's',
    3,
  );
  // The figures of each repeat's run of ours with the product's defaults: label, value, unit, digits.
  const figures: [string, (o: (typeof head)[number]) => number | null | undefined, string, number?][] = [
    ['ours: start → awaiting_approval (what the operator waits for)', (o) => o.toApprovalSeconds, 's'],
    ['&nbsp;&nbsp;start → the statistics in (gathered while approval waits; an approve before waits for them)', (o) => o.toStatisticsSeconds ?? null, 's'],
    ['writer p99, baseline (before the switchover)', (o) => o.writer.baseline.p99, 'ms'],
    ['writer p99 during the copy stage', (o) => o.writer.copy.p99, 'ms'],
    ['cutover lock held (`lockMs`)', (o) => o.cutover.lockMs, 'ms', 1],
    ['cutover lock wait (`lockWaitMs`)', (o) => o.cutover.lockWaitMs, 'ms', 1],
    ['cutover attempts', (o) => o.cutover.attempts, '', 0],
    ['approve → done', (o) => o.cutover.windowMs, 'ms', 0],
    ['writer p99 from approve to done', (o) => o.writer.cutover.p99, 'ms'],
    ['writer max latency from approve to done', (o) => o.writer.cutover.max, 'ms'],
    ['history events per switchover', (o) => o.historyEvents, '', 0],
    ['worker resident memory during the switchover (max)', (o) => o.worker.rssMb, 'MB', 0],
  ];
  for (const [what, pick, unit, d] of figures) row(what, head.map(pick), unit, d);
  L.push(`| worker peak memory, whole run (VmHWM; includes bundling the workflow code at start) | ${f(r.workerPeakMb, 0)} MB | |`);
  L.push(
    `| writer ops / failed ops, all runs of ours | ${r.runs.flatMap((x) => x.ours).reduce((a, o) => a + o.writer.total, 0)} / ${r.runs.flatMap((x) => x.ours).reduce((a, o) => a + o.writer.failures, 0)} | ${[...new Set(r.runs.flatMap((x) => x.ours.flatMap((o) => o.writer.errors)))].slice(0, 3).join('; ')} |`,
  );

  for (const x of r.failedRuns ?? []) L.push(`| **FAILED** run of ours (repeat ${x.repeat}, ${x.label}) | – | ${x.error.replace(/\|/g, '/')} |`);

  // Targets.
  const hist = historyFlat(all);
  const at10M = r.rows >= 10_000_000 ? '' : ' (the issue reads it at 10M rows)';
  L.push('', '#### Targets (issue 15)', '', '| goal | measured | met |', '|---|---:|---|');
  const ok = (x: number, test: (x: number) => boolean) => (finite(x) ? test(x) : null);
  L.push(
    `| copy stage ≥ 1.0x the ceiling (INSERT … SELECT into the final table without foreign keys / our copy stage) | ${f(s.copyVsCeiling)}x (${f(s.ceilingSeconds)} s vs ${f(s.copyStageSeconds)} s) | ${met(ok(s.copyVsCeiling, (x) => x >= 1))} |`,
  );
  L.push(
    `| &nbsp;&nbsp;beside it: against the ceiling with foreign keys / the bare-table ceiling | ${f(s.copyVsCeilingWithFk)}x / ${f(s.copyVsBare)}x | (reported) |`,
  );
  L.push(
    `| verification ≤ 1.0x \`count(*)\` of both tables | ${f(s.verifyVsCount)}x (${f(s.verifySeconds)} s vs ${f(s.countSeconds, 3)} s) | ${met(ok(s.verifyVsCount, (x) => x <= 1))} |`,
  );
  L.push(`| verification ≤ 10% of the copy stage | ${f(s.verifyShareOfCopy * 100, 1)}% | ${met(ok(s.verifyShareOfCopy, (x) => x <= 0.1))} |`);
  L.push(
    `| &nbsp;&nbsp;beside it: verification / index-only count on vacuumed tables | ${f(s.verifyVsIndexOnly)}x (${f(s.indexOnlyCountSeconds, 3)} s) | (reported) |`,
  );
  L.push(
    `| writer p99 during the copy stage ≤ 2x its p99 in the ${r.baselineSeconds} s before (${r.writerRatePerSec}/s, one connection, default settings) | ${f(s.p99Ratio)}x (${f(s.p99Copy)} ms vs ${f(s.p99Baseline)} ms) | ${met(ok(s.p99Ratio, (x) => x <= 2))} |`,
  );
  L.push(`| &nbsp;&nbsp;with the copy stage still ≥ 0.8x the ceiling | ${f(s.copyVsCeiling)}x | ${met(ok(s.copyVsCeiling, (x) => x >= 0.8))} |`);
  L.push(
    `| writer p99 from approve to done ≤ the lock time + 20 ms${at10M} | ${f(s.cutoverP99)} ms vs ${f(s.lockMs, 1)} ms held (wait ${f(s.lockWaitMs, 1)} ms); max ${f(s.cutoverMax)} ms | ${met(ok(s.cutoverP99OverLock, (x) => x <= 20))} |`,
  );
  L.push(
    `| start → awaiting_approval ≤ 1.3x the bare ceiling (\`INSERT … SELECT\`, one \`CREATE INDEX\` per index, the foreign keys; issue 23) | ${f(s.approvalVsBare)}x (${f(s.toApprovalSeconds)} s vs ${f(s.bareSeconds)} s) | ${met(ok(s.approvalVsBare, (x) => x <= 1.3))} |`,
  );
  L.push(
    `| copy stage ≥ 4x faster than pg_partman 4.7 \`partition_data_proc\` | ${f(s.partmanVsOurs)}x | ${Number.isFinite(s.partmanVsOurs) ? met(s.partmanVsOurs >= 4) : 'not run'} |`,
  );
  L.push(
    `| history events per switchover flat (±10) from 1M to 10M rows | ${hist ? `${n(hist.at1M)} → ${n(hist.at10M)} (latest 1M and 10M runs)` : `${n(s.historyEvents)} here; needs runs at 1M and 10M rows`} | ${hist ? met(Math.abs(hist.at10M - hist.at1M) <= 10) : 'not measured'} |`,
  );
  L.push(`| writer failed ops (correctness) | ${s.writerFailures} | ${met(s.writerFailures === 0)} |`);

  // The writer's windows.
  L.push(
    '',
    `#### The writer (${r.writerRatePerSec} single-row statements/s, one connection; latency = statement sent → answered; "from due" adds the wait behind the previous op)`,
    '',
  );
  L.push('| window | ops | p50 | p99 | max | p99 from due | failed |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, pick] of [
    [`${r.baselineSeconds} s before the switchover`, (o: OursRun) => o.writer.baseline],
    ['copy stage', (o: OursRun) => o.writer.copy],
    ['approve → done', (o: OursRun) => o.writer.cutover],
  ] as const) {
    const w = head.map(pick);
    L.push(
      `| ${name} | ${n(median(w.map((x) => x.ops)))} | ${f(median(w.map((x) => x.p50)))} ms | ${f(median(w.map((x) => x.p99)))} ms | ${f(median(w.map((x) => x.max)))} ms | ${f(median(w.map((x) => x.p99FromDue)))} ms | ${w.reduce((a, x) => a + x.failures, 0)} |`,
    );
  }
  const extras = r.runs.flatMap((rep) => rep.ours.filter((o) => !o.headline));
  if (extras.length) {
    L.push(
      '',
      '#### Other settings (first repeat only)',
      '',
      '| run | copy stage | vs ceiling | verification | writer p99 before → copy stage | ratio |',
      '|---|---:|---:|---:|---:|---:|',
    );
    const ceil = r.runs[0].ceiling.seconds;
    for (const o of extras) {
      L.push(
        `| ${o.label} | ${f(o.copyStageSeconds)} s | ${f(ceil / o.copyStageSeconds)}x | ${f(o.verifySeconds)} s | ${f(o.writer.baseline.p99)} → ${f(o.writer.copy.p99)} ms | ${f(num(o.writer.copy.p99) / num(o.writer.baseline.p99))}x |`,
      );
    }
  }
  L.push(...whereTimeGoes(r));
  L.push(...scalingTable(all));
  L.push('', `![benchmark chart](${svgName})`, '');
  return L.join('\n');
}

const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Three panels: seconds per contender; copy throughput over time; writer latency over time. */
export function renderSvg(r: BenchResult): string {
  const W = 960;
  const out: string[] = [];
  const text = (x: number, y: number, t: string, extra = '') => out.push(`<text x="${x}" y="${y}" ${extra}>${esc(t)}</text>`);
  // Panel 1: bars.
  const bars: { label: string; parts: { v: number; color: string; name: string }[] }[] = [];
  bars.push({ label: 'ceiling INSERT…SELECT (no FK)', parts: [{ v: median(r.runs.map((x) => x.ceiling.seconds)), color: '#888', name: 'insert' }] });
  if (r.runs.some((x) => x.ceiling.withFkSeconds !== null))
    bars.push({ label: 'ceiling with foreign keys', parts: [{ v: median(r.runs.map((x) => x.ceiling.withFkSeconds)), color: '#aaa', name: 'insert' }] });
  bars.push({
    label: 'bare insert, then indexes, FKs',
    parts: [
      { v: median(r.runs.map((x) => x.ceiling.bareInsertSeconds)), color: '#888', name: 'insert' },
      { v: median(r.runs.map((x) => x.ceiling.bareIndexSeconds)), color: '#49c', name: 'indexes' },
      { v: median(r.runs.map((x) => x.ceiling.bareFkSeconds)), color: '#9bd', name: 'foreign keys' },
    ],
  });
  if (r.runs.some((x) => 'seconds' in x.partman))
    bars.push({ label: 'pg_partman partition_data_proc', parts: [{ v: median(r.runs.map(partmanSeconds)), color: '#c44', name: 'partman' }] });
  const labels = [...new Set(r.runs.flatMap((rep) => rep.ours.map((o) => o.label)))];
  for (const label of labels) {
    const o = r.runs.flatMap((rep) => rep.ours.filter((x) => x.label === label));
    const rest = median(o.map((x) => x.copyStageSeconds - (x.parts.copy ?? 0) - (x.parts.recheck ?? 0) - (x.parts.indexes ?? 0)));
    bars.push({
      label: `ours, ${label}`,
      parts: [
        { v: median(o.map((x) => x.parts.copy ?? 0)), color: '#2a7', name: 'copy' },
        { v: median(o.map((x) => x.parts.recheck ?? 0)), color: '#7c5', name: 're-check' },
        { v: median(o.map((x) => x.parts.indexes ?? 0)), color: '#49c', name: 'indexes' },
        { v: rest, color: '#ddd', name: 'rest of the copy stage' },
      ],
    });
  }
  const head = heads(r);
  bars.push({ label: 'verification', parts: [{ v: median(head.map((x) => x.verifySeconds)), color: '#a6c', name: 'verify' }] });
  bars.push({ label: 'count(*) both tables', parts: [{ v: median(head.map((x) => x.counts?.countSeconds)), color: '#bbb', name: 'count' }] });
  bars.push({ label: 'index-only count, vacuumed', parts: [{ v: median(head.map((x) => x.counts?.indexOnlyCountSeconds)), color: '#ccc', name: 'count' }] });
  const maxV = Math.max(1e-9, ...bars.map((b) => b.parts.reduce((a, p) => a + (Number.isFinite(p.v) ? p.v : 0), 0)));
  const x0 = 250;
  const bw = W - x0 - 80;
  let y = 50;
  text(
    20,
    28,
    `${r.rows.toLocaleString('en-US')} rows, ${r.machine.nproc} cores, PostgreSQL ${r.machine.postgres}: seconds (median of ${r.repeats})`,
    'font-weight="bold"',
  );
  for (const b of bars) {
    text(x0 - 8, y + 13, b.label, 'text-anchor="end"');
    let x = x0;
    let total = 0;
    for (const p of b.parts) {
      if (!Number.isFinite(p.v) || p.v <= 0) continue;
      const w = (p.v / maxV) * bw;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${p.color}"><title>${esc(`${p.name} ${p.v.toFixed(2)} s`)}</title></rect>`,
      );
      x += w;
      total += p.v;
    }
    text(x + 6, y + 13, `${total.toFixed(2)} s`);
    y += 26;
  }
  const legend = [
    ['#2a7', 'copy'],
    ['#7c5', 're-check + repair'],
    ['#49c', 'indexes'],
    ['#ddd', 'rest of the copy stage'],
  ];
  legend.forEach(([c, l], i) => {
    out.push(`<rect x="${x0 + i * 160}" y="${y}" width="12" height="12" fill="${c}"/>`);
    text(x0 + i * 160 + 18, y + 11, l);
  });
  y += 40;

  // Panels 2 and 3: the headline run of the last repeat, over time.
  const run = head[head.length - 1];
  if (run) {
    const tl = run.timeline;
    // From the writer's baseline (the seconds before the switchover) to the end.
    const firstPhase = tl.phases[0]?.t ?? 0;
    const tMin = Math.max(0, firstPhase - r.baselineSeconds - 0.5);
    const tMax = Math.max(tMin + 1, ...tl.writer.map((w) => w.t + 1), ...tl.phases.map((p) => p.t));
    const px0 = 70;
    const pw = W - px0 - 30;
    const tx = (t: number) => px0 + ((Math.max(t, tMin) - tMin) / (tMax - tMin)) * pw;
    const panel = (title: string, h: number, series: { pts: [number, number][]; color: string; name: string }[], unit: string) => {
      const top = y + 20;
      text(20, y + 10, title, 'font-weight="bold"');
      // Phase bands.
      tl.phases.forEach((p, i) => {
        const next = tl.phases[i + 1]?.t ?? tMax;
        const fill = { copy: '#e8f5e9', verify: '#f3e5f5', awaiting_approval: '#fff8e1', statistics: '#fff3cd', cutover: '#ffebee' }[p.phase];
        if (fill) out.push(`<rect x="${tx(p.t).toFixed(1)}" y="${top}" width="${Math.max(1, tx(next) - tx(p.t)).toFixed(1)}" height="${h}" fill="${fill}"/>`);
        if (fill) text(tx(p.t) + 2, top + 11, p.phase, 'font-size="10" fill="#555"');
      });
      // The copy stage (history) as a frame, the baseline as a grey band.
      const [c0, c1] = tl.copyStage;
      out.push(
        `<rect x="${tx(c0).toFixed(1)}" y="${top}" width="${Math.max(1, tx(c1) - tx(c0)).toFixed(1)}" height="${h}" fill="none" stroke="#2a7" stroke-dasharray="4 2"/>`,
      );
      text(tx(c0) + 2, top + h - 4, 'copy stage', 'font-size="10" fill="#2a7"');
      out.push(
        `<rect x="${tx(firstPhase - r.baselineSeconds).toFixed(1)}" y="${top}" width="${Math.max(1, tx(firstPhase) - tx(firstPhase - r.baselineSeconds)).toFixed(1)}" height="${h}" fill="#f4f4f4"/>`,
      );
      text(tx(firstPhase - r.baselineSeconds) + 2, top + 11, 'baseline', 'font-size="10" fill="#555"');
      const vMax = Math.max(1e-9, ...series.flatMap((s) => s.pts.map(([, v]) => v)));
      out.push(`<rect x="${px0}" y="${top}" width="${pw}" height="${h}" fill="none" stroke="#999"/>`);
      text(px0 - 6, top + 10, `${vMax >= 1000 ? n(vMax) : vMax.toFixed(1)}`, 'text-anchor="end" font-size="10"');
      text(px0 - 6, top + h, '0', 'text-anchor="end" font-size="10"');
      text(px0 - 6, top + h / 2, unit, 'text-anchor="end" font-size="10"');
      for (const s of series) {
        if (!s.pts.length) continue;
        const d = s.pts
          .filter(([t]) => t >= tMin)
          .map(([t, v], i) => `${i ? 'L' : 'M'}${tx(t).toFixed(1)},${(top + h - (v / vMax) * h).toFixed(1)}`)
          .join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
      }
      series.forEach((s, i) => {
        out.push(`<rect x="${px0 + pw - 260 + i * 130}" y="${y}" width="12" height="3" fill="${s.color}"/>`);
        text(px0 + pw - 242 + i * 130, y + 6, s.name, 'font-size="11"');
      });
      y = top + h + 18;
      text(px0, y, `${tMin.toFixed(0)} s`, 'font-size="10"');
      text(px0 + pw, y, `${tMax.toFixed(0)} s`, 'text-anchor="end" font-size="10"');
      y += 14;
    };
    const copied: [number, number][] = tl.throughput.map((p) => [p.t, p.rows]);
    const copySpan = run.parts.copy && run.rows ? `, ${Math.round(run.rows / run.parts.copy).toLocaleString('en-US')} rows/s over the copy activities` : '';
    panel(`rows copied, ours ${run.label} (the slope is the throughput${copySpan})`, 120, [{ pts: copied, color: '#2a7', name: 'rows copied' }], 'rows');
    panel(
      `application writer latency, ${r.writerRatePerSec} single-row statements/s on one connection (per 1 s window)`,
      140,
      [
        { pts: tl.writer.filter((w) => w.ops).map((w) => [w.t, w.p50]), color: '#49c', name: 'p50 ms' },
        { pts: tl.writer.filter((w) => w.ops).map((w) => [w.t, w.p99]), color: '#c44', name: 'p99 ms' },
      ],
      'ms',
    );
  }
  const H = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

/** The latest summary of every row count in a results folder (for the scaling table). */
export function readSummaries(dir: string): Scaling[] {
  return readdirSync(dir)
    .filter((f) => /^rows-\d+\.summary\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Scaling);
}

// `tsx bench/report.ts bench/out/<result>.json`: renders beside the JSON (bench/out/);
// with `--results`, to bench/results/rows-<N>.{md,svg} with the scaling table (not latest.*).
if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx bench/report.ts bench/out/<result>.json [--results]');
    process.exit(1);
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  if (process.argv.includes('--results')) {
    const dir = join(__dirname, 'results');
    writeFileSync(join(dir, `rows-${r.rows}.md`), renderMarkdown(r, readSummaries(dir), `rows-${r.rows}.svg`));
    writeFileSync(join(dir, `rows-${r.rows}.svg`), renderSvg(r));
  } else {
    const base = file.replace(/\.json$/, '');
    writeFileSync(`${base}.md`, renderMarkdown(r, [], `${base.split('/').pop()}.svg`));
    writeFileSync(`${base}.svg`, renderSvg(r));
  }
  console.log(renderMarkdown(r));
}
