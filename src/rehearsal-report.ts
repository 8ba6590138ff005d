// The rehearsal's plain data, its forecast arithmetic and its markdown report. Pure: the
// rehearsal workflow imports this module (no I/O, no Node built-ins).
import type { LoadSummary } from './tableload';
import type { SwitchoverStatus } from './status';

/** The seed's ten rehearsal phases, in order. */
export const REHEARSAL_PHASES = [
  { phase: 'environment', title: 'environment' },
  { phase: 'prepare', title: 'prepare partitioned tables' },
  { phase: 'trigger_behaviour', title: 'trigger behaviour' },
  { phase: 'dry_run', title: 'dry run' },
  { phase: 'switchover', title: 'switchover' },
  { phase: 'application_testing', title: 'application testing' },
  { phase: 'performance', title: 'performance' },
  { phase: 'load', title: 'load' },
  { phase: 'rollback_test', title: 'rollback test' },
  { phase: 'signoff', title: 'sign-off' },
] as const;
export type RehearsalPhase = (typeof REHEARSAL_PHASES)[number]['phase'];

export interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}
export const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail });
export const warn = (name: string, detail: string): Check => ({ name, status: 'warn', detail });
export const bad = (name: string, detail: string): Check => ({ name, status: 'fail', detail });

/** What a phase's step returns; the workflow adds the timing. */
export interface PhaseOutcome {
  summary: string;
  checks: Check[];
  details?: Record<string, unknown>;
  /** A phase with nothing to do (e.g. load without a writer configured). */
  skipped?: boolean;
}

export interface PhaseRecord {
  n: number;
  phase: RehearsalPhase;
  title: string;
  result: 'pending' | 'running' | 'pass' | 'fail' | 'skipped' | 'not_run';
  startedAt?: string;
  ms?: number;
  summary: string;
  checks: Check[];
  details?: Record<string, unknown>;
}

export const resultOf = (o: PhaseOutcome): 'pass' | 'fail' | 'skipped' => (o.checks.some((c) => c.status === 'fail') ? 'fail' : o.skipped ? 'skipped' : 'pass');

/** One statement the application runs, checked before and after cutover. */
export interface SmokeItem {
  name: string;
  sql: string;
  /** The demo table it is about (built-in set), or none (smokeSql). */
  table?: string;
  builtin: boolean;
  /** A range scan on the partition key: after cutover it must touch only the partitions of its range. */
  expectPruning?: boolean;
  /** A statement as pg_stat_statements keeps it (`$1` for its constants): its generic plan is read, it is never run. */
  generic?: boolean;
}

/** A statement's answer, run in a transaction that is rolled back. */
export interface SmokeAnswer {
  name: string;
  ok: boolean;
  command: string;
  rowCount: number;
  /** md5 of the result rows as sorted JSON (reads); empty for writes, which compare rowCount. */
  answer: string;
  /** The first row, shortened, so a changed answer can be read in the report. */
  preview: string;
  error?: string;
  ms: number;
}

/** EXPLAIN and timings of one statement. */
export interface SmokePlan {
  name: string;
  ok: boolean;
  error?: string;
  /** Median of the timed runs (each in a rolled-back transaction). */
  ms: number;
  runs: number;
  totalCost: number;
  relations: string[];
  /** Per partitioned table the plan reads: partitions in the plan of all partitions. */
  partitions: { table: string; scanned: number; total: number }[];
}

export interface TableSizes {
  table: string;
  rows: number;
  /** The partitioned table with its partitions and indexes. */
  partitionedBytes: number;
  legacyBytes: number;
  backupBytes: number;
}

export interface TableMeasure extends TableSizes {
  copyMs: number;
  verifyMs: number;
  lockMs: number;
}

export interface TableForecast {
  table: string;
  rows: number;
  copySeconds: number | null;
  verifySeconds: number | null;
  diskBytes: number | null;
}

export interface Forecast {
  /** Where the production row counts came from. */
  source: string;
  tables: TableForecast[];
  total: { copySeconds: number; verifySeconds: number; diskBytes: number; lockMs: number };
  /** The staging rates it scales from, per table (rows/s). */
  rates: { table: string; copyRowsPerSec: number | null; verifyRowsPerSec: number | null }[];
  /** What the rehearsal's load saw: its rate, and the longest write at cutover (null: no write ran across the cutover). */
  load?: { writesPerSec: number; p99Ms: number; cutoverStallMs: number | null };
  basis: string[];
}

/** Scales measured staging rates linearly to production row counts. */
export function forecastFrom(
  measured: TableMeasure[],
  rows: Record<string, number>,
  source: string,
  backup: boolean,
  load?: { writesPerSec: number; p99Ms: number; cutoverStallMs: number | null },
): Forecast {
  const tables = measured.map((m): TableForecast => {
    const n = rows[m.table] ?? m.rows;
    const per = (x: number) => (m.rows > 0 ? (x * n) / m.rows : null);
    const copy = per(m.copyMs);
    const verify = per(m.verifyMs);
    const disk = per(m.partitionedBytes + (backup ? m.backupBytes : 0));
    return {
      table: m.table,
      rows: n,
      copySeconds: copy === null ? null : round(copy / 1000),
      verifySeconds: verify === null ? null : round(verify / 1000),
      diskBytes: disk === null ? null : Math.round(disk),
    };
  });
  const sum = (f: (t: TableForecast) => number | null) => tables.reduce((a, t) => a + (f(t) ?? 0), 0);
  return {
    source,
    tables,
    total: {
      copySeconds: round(sum((t) => t.copySeconds)),
      verifySeconds: round(sum((t) => t.verifySeconds)),
      diskBytes: sum((t) => t.diskBytes),
      lockMs: round(Math.max(0, ...measured.map((m) => m.lockMs))),
    },
    rates: measured.map((m) => ({
      table: m.table,
      copyRowsPerSec: m.copyMs > 0 ? Math.round((m.rows * 1000) / m.copyMs) : null,
      verifyRowsPerSec: m.verifyMs > 0 ? Math.round((m.rows * 1000) / m.verifyMs) : null,
    })),
    load,
    basis: [
      `measured on staging: ${measured.map((m) => `${m.table} ${m.rows} rows copied in ${Math.round(m.copyMs)} ms, verified in ${Math.round(m.verifyMs)} ms`).join('; ') || 'no table'}`,
      load
        ? `writers on staging: ${load.writesPerSec} writes/s, p99 ${load.p99Ms} ms; ${load.cutoverStallMs === null ? 'the load was paused across the cutover, so no stall at cutover was measured' : `the longest write across the cutover took ${load.cutoverStallMs} ms (the stall writers see)`}`
        : 'no load ran on staging: the stall writers see at cutover was not measured',
      'copy and verify times scale linearly from the rows/s measured on staging (tables one after another, as the switchover runs them); small staging tables overstate fixed costs',
      `disk: bytes per row of the partitioned table with its indexes${backup ? ' plus the backup table' : ''} measured on staging, times production rows; WAL comes on top (up to max_wal_size)`,
      'cutover lock: renames only, independent of rows; the longest staging cutover is shown',
    ],
  };
}

export type WriterReport = Omit<LoadSummary, 'committed'>;

export interface RehearsalReport {
  workflowId: string;
  database: string;
  schema: string;
  tables: string[];
  outcome: 'in_progress' | 'signed_off' | 'failed';
  failedPhase?: { n: number; phase: RehearsalPhase; title: string; message: string };
  phases: PhaseRecord[];
  switchoverWorkflowId?: string;
  rollbackWorkflowId?: string;
  cutover: { table: string; lockMs: number }[];
  writer?: WriterReport;
  forecast?: Forecast;
  /** After a failed phase: how staging was put back. */
  restore?: { ok: boolean; summary: string; checks: Check[] };
  signoff?: { by: string; comment?: string; at: string };
  markdown: string;
}

export interface RehearsalState {
  database: string;
  phases: PhaseRecord[];
  switchoverWorkflowId?: string;
  rollbackWorkflowId?: string;
  writer?: { state: 'running' | 'paused' | 'stopped'; ops: number; failures: number; errors: string[] };
  report?: RehearsalReport;
  signoff?: { by: string; comment?: string; at: string };
}

/** The `status` of a rehearsal: the switchover's status shape plus the rehearsal's phases. */
export type RehearsalStatus = SwitchoverStatus & { rehearsal: RehearsalState };

const round = (x: number) => Math.round(x * 100) / 100;

export function formatBytes(b: number | null): string {
  if (b === null) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let x = b;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i ? 1 : 0)} ${units[i]}`;
}

const dur = (ms: number | undefined) => (ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
const secs = (s: number | null) => (s === null ? '–' : s < 90 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The report as markdown: current details while it runs, and the `markdown` of the result. */
export function renderRehearsal(
  s: { phase: string; tables: string[] } & RehearsalState & { failedPhase?: RehearsalReport['failedPhase']; restore?: RehearsalReport['restore'] },
  extra: { cutover?: RehearsalReport['cutover']; writer?: WriterReport; forecast?: Forecast; workflowId: string; namespace: string },
): string {
  const lines = [`## Rehearsal on \`${s.database}\`: ${s.phase}`, '', `Tables: ${s.tables.join(', ')}`, ''];
  lines.push('| # | phase | result | duration | summary |', '|---:|---|---|---:|---|');
  for (const p of s.phases) lines.push(`| ${p.n} | ${p.title} | ${p.result.toUpperCase()} | ${dur(p.ms)} | ${cell(p.summary)} |`);
  lines.push('');
  if (s.failedPhase) {
    lines.push(`### FAILED in phase ${s.failedPhase.n}: ${s.failedPhase.title}`, '', s.failedPhase.message, '');
  }
  const notable = s.phases.flatMap((p) => p.checks.filter((c) => c.status !== 'ok').map((c) => ({ p, c })));
  if (notable.length) {
    lines.push('### Findings', '');
    for (const { p, c } of notable) lines.push(`- **${c.status}** (${p.title}) ${c.name}: ${c.detail}`);
    lines.push('');
  }
  if (s.restore) lines.push(`### Staging restored: ${s.restore.ok ? 'yes' : 'NO'}`, '', s.restore.summary, '');
  if (extra.cutover?.length) lines.push(`Cutover lock held: ${extra.cutover.map((c) => `${c.table} ${c.lockMs.toFixed(1)} ms`).join(', ')}`, '');
  const w = extra.writer;
  if (w) {
    lines.push(
      '### Live writer',
      '',
      `${w.writes} writes, ${w.failedWrites} failed, ${w.opsPerSec} ops/s; latency p50 ${w.latencyMs.p50} ms, p99 ${w.latencyMs.p99} ms, max ${w.latencyMs.max} ms${w.firstError ? `; first error: ${w.firstError}` : ''}`,
      '',
      '| segment | writes | failed | p50 ms | p99 ms | max ms |',
      '|---|---:|---:|---:|---:|---:|',
      ...Object.entries(w.bySegment).map(
        ([k, v]) => `| ${k} | ${v.writes} | ${v.failedWrites} | ${v.latencyMs.p50} | ${v.latencyMs.p99} | ${v.latencyMs.max} |`,
      ),
      ...Object.entries(w.skipped).map(([k, why]) => `- not run: ${k}: ${why}`),
      '',
    );
  }
  const f = extra.forecast;
  if (f) {
    lines.push(`### Forecast for production (${f.source})`, '', '| table | rows | copy | verify | disk |', '|---|---:|---:|---:|---:|');
    for (const t of f.tables)
      lines.push(`| ${t.table} | ${t.rows.toLocaleString('en-US')} | ${secs(t.copySeconds)} | ${secs(t.verifySeconds)} | ${formatBytes(t.diskBytes)} |`);
    lines.push(
      `| total | | ${secs(f.total.copySeconds)} | ${secs(f.total.verifySeconds)} | ${formatBytes(f.total.diskBytes)} |`,
      '',
      `Cutover lock (renames only, independent of rows): at most ${f.total.lockMs.toFixed(1)} ms per table on staging.`,
      '',
      `Scaled from the staging rates: ${f.rates.map((r) => `${r.table} copy ${r.copyRowsPerSec ?? '–'} rows/s, verify ${r.verifyRowsPerSec ?? '–'} rows/s`).join('; ')}.`,
      '',
      ...f.basis.map((b) => `- ${b}`),
      '',
    );
  }
  if (s.phase === 'awaiting_signoff') {
    const ns = extra.namespace === 'default' ? '' : ` --namespace ${extra.namespace}`;
    lines.push(
      '### Waiting for sign-off',
      '',
      '```',
      `temporal workflow signal${ns} --workflow-id ${extra.workflowId} --name signoff --input '{"by":"<you>","comment":"..."}'`,
      '```',
      '',
    );
  }
  if (s.signoff) lines.push(`Signed off by ${s.signoff.by} at ${s.signoff.at}${s.signoff.comment ? `: ${s.signoff.comment}` : ''}`, '');
  return lines.join('\n');
}
