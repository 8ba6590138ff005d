// The benchmark's report: a markdown table and a hand-written SVG chart from one run's result.
// Pure (no I/O), so a saved JSON can be rendered again: `tsx bench/report.ts bench/out/<file>.json`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SegmentStats } from '../demo/load';

export interface OursRun {
  label: string;
  parallelism: number;
  copyMode: 'recheck' | 'lock';
  batchSize: number;
  rows: number;
  /** First copy activity started → buildIndexes completed (history event times). */
  copyStageSeconds: number;
  copyRangeSeconds: number | null;
  recheckSeconds: number | null;
  indexSeconds: number | null;
  repaired: number;
  verifySeconds: number | null;
  verifyOk: boolean;
  countBothSeconds: number;
  cutoverLockMs: number;
  historyEvents: number;
  worker: { peakMb: number; rssMb: number };
  writer: {
    baseline?: SegmentStats;
    copy?: SegmentStats;
    verify?: SegmentStats;
    cutover?: SegmentStats;
    failures: number;
    errors: string[];
  };
  timeline: {
    phases: { phase: string; t: number }[];
    throughput: { t: number; rows: number }[];
    writer: { t: number; p50: number; p99: number; ops: number }[];
  };
}

export interface Repeat {
  ceiling: { seconds: number; insertNoIndexSeconds: number; indexesAfterSeconds: number; rows: number };
  partman: { seconds: number; rows: number; version: string } | { skipped: string };
  ours: OursRun[];
}

export interface BenchResult {
  at: string;
  rows: number;
  repeats: number;
  writerRatePerSec: number;
  batchSize: number;
  machine: { nproc: number; cpu: string; memoryGb: number; postgres: string; node: string; loadAverageAtStart: string };
  partmanNote: string | null;
  workerPeakMb: number;
  runs: Repeat[];
}

const median = (xs: (number | null | undefined)[]) => {
  const s = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const n = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const yes = (ok: boolean) => (ok ? '**yes**' : '**no**');

/** The run that stands for "ours" in the headline ratios: the default (recheck, parallel). */
export const HEADLINE = 'recheck parallel';

function labels(r: BenchResult): string[] {
  return r.runs[0]?.ours.map((o) => o.label) ?? [];
}
/** Batch-size sweep and throttled runs are listed in the table but not drawn as bars. */
const barLabels = (r: BenchResult) => labels(r).filter((l) => !/batch|pause/.test(l));
const oursOf = (r: BenchResult, label: string) => r.runs.map((rep) => rep.ours.find((o) => o.label === label)).filter((o): o is OursRun => !!o);
const partmanSeconds = (rep: Repeat) => ('seconds' in rep.partman ? rep.partman.seconds : NaN);

export function summary(r: BenchResult) {
  const head = oursOf(r, HEADLINE);
  const pair = (fn: (rep: Repeat, o: OursRun) => number) =>
    median(r.runs.map((rep) => {
      const o = rep.ours.find((x) => x.label === HEADLINE);
      return o ? fn(rep, o) : NaN;
    }));
  return {
    ceilingSeconds: median(r.runs.map((x) => x.ceiling.seconds)),
    partmanSeconds: median(r.runs.map(partmanSeconds)),
    copyVsCeiling: pair((rep, o) => rep.ceiling.seconds / o.copyStageSeconds),
    copyVsBare: pair((rep, o) => (rep.ceiling.insertNoIndexSeconds + rep.ceiling.indexesAfterSeconds) / o.copyStageSeconds),
    partmanVsOurs: pair((rep, o) => partmanSeconds(rep) / o.copyStageSeconds),
    verifyVsCount: median(head.map((o) => (o.verifySeconds ?? NaN) / o.countBothSeconds)),
    lockMs: median(head.map((o) => o.cutoverLockMs)),
    lockMsMax: Math.max(...r.runs.flatMap((rep) => rep.ours.map((o) => o.cutoverLockMs))),
    p99Ratio: median(head.map((o) => (o.writer.copy?.p99 ?? NaN) / (o.writer.baseline?.p99 ?? NaN))),
    throttled: (() => {
      const label = labels(r).find((l) => /pause/.test(l));
      const t = label ? oursOf(r, label) : [];
      return {
        label: label ?? null,
        p99Ratio: median(t.map((o) => (o.writer.copy?.p99 ?? NaN) / (o.writer.baseline?.p99 ?? NaN))),
        copyVsCeiling: median(r.runs.map((rep) => {
          const o = rep.ours.find((x) => x.label === label);
          return o ? rep.ceiling.seconds / o.copyStageSeconds : NaN;
        })),
      };
    })(),
    historyEvents: median(head.map((o) => o.historyEvents)),
    workerRssMb: median(head.map((o) => o.worker.rssMb)),
  };
}

/** What a run keeps in bench/results/rows-<N>.summary.json, for the scaling table of later runs. */
export type Scaling = { rows: number; at: string } & ReturnType<typeof summary>;

function scalingTable(all: Scaling[]): string[] {
  if (all.length < 2) return [];
  const L = ['', 'As rows grow (each row count\'s latest run on this machine):', '', '| rows | copy stage vs ceiling | vs pg_partman | verification / count(*) | cutover lock | history events | worker memory during switchover |', '|---:|---:|---:|---:|---:|---:|---:|'];
  for (const s of [...all].sort((a, b) => a.rows - b.rows)) {
    L.push(`| ${s.rows.toLocaleString('en-US')} | ${f(s.copyVsCeiling)}x | ${f(s.partmanVsOurs)}x | ${f(s.verifyVsCount)}x | ${f(s.lockMs, 1)} ms | ${n(s.historyEvents)} | ${f(s.workerRssMb, 0)} MB |`);
  }
  return L;
}

export function renderMarkdown(r: BenchResult, others: Scaling[] = []): string {
  const m = r.machine;
  const s = summary(r);
  const L: string[] = [];
  L.push(
    `### Benchmark: ${r.rows.toLocaleString('en-US')} rows of \`revenues\``,
    '',
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGb} GB memory, PostgreSQL ${m.postgres}, Node ${m.node}; load average at start ${m.loadAverageAtStart}. ` +
      `${r.repeats} repeat(s), medians shown; ratios are paired within each repeat. Live writer: ${r.writerRatePerSec} ops/s (demo/load.ts) during every run of ours; ` +
      `batch size ${r.batchSize.toLocaleString('en-US')}. Run at ${r.at}.`,
    '',
    '| what | median | per repeat |',
    '|---|---:|---|',
  );
  const row = (what: string, vals: number[], unit: string, d = 2) => L.push(`| ${what} | ${f(median(vals), d)} ${unit} | ${vals.map((v) => f(v, d)).join(', ')} |`);
  row('ceiling: one `INSERT INTO <partitioned, final indexes and foreign keys> SELECT`', r.runs.map((x) => x.ceiling.seconds), 's');
  row('ceiling, bare table (keys only), then `CREATE INDEX` + `ADD FOREIGN KEY` (both block writers)', r.runs.map((x) => x.ceiling.insertNoIndexSeconds + x.ceiling.indexesAfterSeconds), 's');
  if (r.runs.some((x) => 'seconds' in x.partman)) {
    const v = r.runs.map((x) => ('version' in x.partman ? x.partman.version : '')).find(Boolean);
    row(`pg_partman ${v} \`partition_data_proc\` (p_wait 0)`, r.runs.map(partmanSeconds), 's');
  } else {
    L.push(`| pg_partman \`partition_data_proc\` | not run | ${(r.partmanNote ?? 'skipped').replace(/\n/g, ' ')} |`);
  }
  for (const label of labels(r)) {
    const o = oursOf(r, label);
    row(`ours, ${label}: copy stage (copy → final indexes)${/batch/.test(label) ? '' : `, batch ${o[0].batchSize.toLocaleString('en-US')}`}`, o.map((x) => x.copyStageSeconds), 's');
    L.push(
      `| &nbsp;&nbsp;of which copy / re-check / indexes | ${f(median(o.map((x) => x.copyRangeSeconds ?? NaN)))} / ${f(median(o.map((x) => x.recheckSeconds ?? NaN)))} / ${f(median(o.map((x) => x.indexSeconds ?? NaN)))} s | rows repaired: ${o.map((x) => x.repaired).join(', ')}; writer p99 during the copy ${f(median(o.map((x) => x.writer.copy?.p99 ?? NaN)))} ms (${f(median(o.map((x) => (x.writer.copy?.p99 ?? NaN) / (x.writer.baseline?.p99 ?? NaN))))}x its baseline) |`,
    );
  }
  const head = oursOf(r, HEADLINE);
  row(`verification (${HEADLINE})`, head.map((x) => x.verifySeconds ?? NaN), 's');
  row('`count(*)` of both tables', head.map((x) => x.countBothSeconds), 's');
  row('cutover lock held', head.map((x) => x.cutoverLockMs), 'ms', 1);
  row('history events per switchover', head.map((x) => x.historyEvents), '', 0);
  row('worker resident memory during the switchover (max)', head.map((x) => x.worker.rssMb), 'MB', 0);
  L.push(`| worker peak memory, whole run (VmHWM; includes bundling the workflow code at start) | ${f(r.workerPeakMb, 0)} MB | |`);
  for (const seg of ['baseline', 'copy', 'cutover'] as const) {
    const p50 = head.map((x) => x.writer[seg]?.p50 ?? NaN);
    const p99 = head.map((x) => x.writer[seg]?.p99 ?? NaN);
    L.push(`| writer p50 / p99, ${seg === 'baseline' ? 'no migration' : seg === 'copy' ? 'during the copy' : 'at cutover (approve → done)'} | ${f(median(p50))} / ${f(median(p99))} ms | p99: ${p99.map((v) => f(v)).join(', ')} |`);
  }
  L.push(`| writer failed ops | ${head.reduce((a, x) => a + x.writer.failures, 0)} | |`);
  L.push('', '| target | measured | met |', '|---|---:|---|');
  L.push(`| copy throughput ≥ 1.0x the INSERT … SELECT ceiling (${HEADLINE}) | ${f(s.copyVsCeiling)}x | ${yes(s.copyVsCeiling >= 1)} |`);
  L.push(`| (the same against the bare-table ceiling with indexes and foreign keys added after) | ${f(s.copyVsBare)}x | ${yes(s.copyVsBare >= 1)} |`);
  L.push(`| ≥ 4x faster than pg_partman \`partition_data_proc\` | ${f(s.partmanVsOurs)}x | ${Number.isFinite(s.partmanVsOurs) ? yes(s.partmanVsOurs >= 4) : 'not run'} |`);
  L.push(`| verification ≤ 2x \`count(*)\` of both tables | ${f(s.verifyVsCount)}x | ${yes(s.verifyVsCount <= 2)} |`);
  L.push(`| cutover lock < 100 ms | ${f(s.lockMs, 1)} ms (max ${f(s.lockMsMax, 1)}) | ${yes(s.lockMsMax < 100)}${r.rows < 10_000_000 ? ' (target is at 10M rows)' : ''} |`);
  L.push(`| writer p99 during the copy ≤ 3x baseline (${HEADLINE}, no throttle) | ${f(s.p99Ratio)}x | ${yes(s.p99Ratio <= 3)} |`);
  if (s.throttled.label) {
    L.push(`| the same with the throttle (${s.throttled.label}; its copy stage ${f(s.throttled.copyVsCeiling)}x the ceiling) | ${f(s.throttled.p99Ratio)}x | ${yes(s.throttled.p99Ratio <= 3)} |`);
  }
  L.push(`| history events and worker memory flat as rows grow | ${n(s.historyEvents)} events, ${f(s.workerRssMb, 0)} MB | compare with the other row count's report |`);
  L.push(...scalingTable([...others.filter((o) => o.rows !== r.rows), { rows: r.rows, at: r.at, ...s }]));
  L.push('', `![benchmark chart](latest.svg)`, '');
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
  bars.push({ label: 'ceiling INSERT…SELECT', parts: [{ v: median(r.runs.map((x) => x.ceiling.seconds)), color: '#888', name: 'insert' }] });
  if (r.runs.some((x) => 'seconds' in x.partman)) bars.push({ label: 'pg_partman partition_data_proc', parts: [{ v: median(r.runs.map(partmanSeconds)), color: '#c44', name: 'partman' }] });
  for (const label of barLabels(r)) {
    const o = oursOf(r, label);
    bars.push({
      label: `ours, ${label}`,
      parts: [
        { v: median(o.map((x) => x.copyRangeSeconds ?? 0)), color: '#2a7', name: 'copy' },
        { v: median(o.map((x) => x.recheckSeconds ?? 0)), color: '#7c5', name: 're-check' },
        { v: median(o.map((x) => x.indexSeconds ?? 0)), color: '#49c', name: 'indexes' },
      ],
    });
  }
  const head = oursOf(r, HEADLINE);
  bars.push({ label: 'verification', parts: [{ v: median(head.map((x) => x.verifySeconds ?? NaN)), color: '#a6c', name: 'verify' }] });
  bars.push({ label: 'count(*) both tables', parts: [{ v: median(head.map((x) => x.countBothSeconds)), color: '#bbb', name: 'count' }] });
  const maxV = Math.max(1e-9, ...bars.map((b) => b.parts.reduce((a, p) => a + (Number.isFinite(p.v) ? p.v : 0), 0)));
  const x0 = 250;
  const bw = W - x0 - 80;
  let y = 50;
  text(20, 28, `${r.rows.toLocaleString('en-US')} rows, ${r.machine.nproc} cores, PostgreSQL ${r.machine.postgres}: seconds (median of ${r.repeats})`, 'font-weight="bold"');
  for (const b of bars) {
    text(x0 - 8, y + 13, b.label, 'text-anchor="end"');
    let x = x0;
    let total = 0;
    for (const p of b.parts) {
      if (!Number.isFinite(p.v) || p.v <= 0) continue;
      const w = (p.v / maxV) * bw;
      out.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${p.color}"><title>${esc(`${p.name} ${p.v.toFixed(2)} s`)}</title></rect>`);
      x += w;
      total += p.v;
    }
    text(x + 6, y + 13, `${total.toFixed(2)} s`);
    y += 26;
  }
  const legend = [['#2a7', 'copy'], ['#7c5', 're-check + repair'], ['#49c', 'indexes (concurrently)']];
  legend.forEach(([c, l], i) => {
    out.push(`<rect x="${x0 + i * 190}" y="${y}" width="12" height="12" fill="${c}"/>`);
    text(x0 + i * 190 + 18, y + 11, l);
  });
  y += 40;

  // Panels 2 and 3: the headline run of the last repeat, over time.
  const run = head[head.length - 1];
  if (run) {
    const tl = run.timeline;
    // From a few seconds of the no-migration baseline before the copy to the end.
    const tMin = Math.max(0, (tl.phases.find((p) => p.phase === 'copy')?.t ?? 0) - 4);
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
        const fill = { copy: '#e8f5e9', verify: '#f3e5f5', awaiting_approval: '#fff8e1', cutover: '#ffebee' }[p.phase];
        if (fill) out.push(`<rect x="${tx(p.t).toFixed(1)}" y="${top}" width="${Math.max(1, tx(next) - tx(p.t)).toFixed(1)}" height="${h}" fill="${fill}"/>`);
        if (fill) text(tx(p.t) + 2, top + 11, p.phase, 'font-size="10" fill="#555"');
      });
      const vMax = Math.max(1e-9, ...series.flatMap((s) => s.pts.map(([, v]) => v)));
      out.push(`<rect x="${px0}" y="${top}" width="${pw}" height="${h}" fill="none" stroke="#999"/>`);
      text(px0 - 6, top + 10, `${vMax >= 1000 ? n(vMax) : vMax.toFixed(1)}`, 'text-anchor="end" font-size="10"');
      text(px0 - 6, top + h, '0', 'text-anchor="end" font-size="10"');
      text(px0 - 6, top + h / 2, unit, 'text-anchor="end" font-size="10"');
      for (const s of series) {
        if (!s.pts.length) continue;
        const d = s.pts.filter(([t]) => t >= tMin).map(([t, v], i) => `${i ? 'L' : 'M'}${tx(t).toFixed(1)},${(top + h - (v / vMax) * h).toFixed(1)}`).join(' ');
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
    const copySpan = run.copyRangeSeconds ? `, ${Math.round(run.rows / run.copyRangeSeconds).toLocaleString('en-US')} rows/s over the copy activities` : '';
    panel(`rows copied, ours ${run.label} (the slope is the throughput${copySpan})`, 120, [{ pts: copied, color: '#2a7', name: 'rows copied' }], 'rows');
    panel(`live writer latency, ${r.writerRatePerSec} ops/s (per 1 s window)`, 140, [
      { pts: tl.writer.filter((w) => w.ops).map((w) => [w.t, w.p50]), color: '#49c', name: 'p50 ms' },
      { pts: tl.writer.filter((w) => w.ops).map((w) => [w.t, w.p99]), color: '#c44', name: 'p99 ms' },
    ], 'ms');
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

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx bench/report.ts bench/out/<result>.json');
    process.exit(1);
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  writeFileSync(join(__dirname, 'results', 'latest.md'), renderMarkdown(r));
  writeFileSync(join(__dirname, 'results', 'latest.svg'), renderSvg(r));
  console.log(renderMarkdown(r));
}
