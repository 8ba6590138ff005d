// The live writer: the hospitality application, writing while a switchover runs.
// It sends the application's plain SQL against `revenues`, `expenses` and
// `daily_cash_balances` and knows nothing about partitions, so whatever a switchover does to
// those tables must keep this SQL working. Failed ops are counted, never thrown.
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import type { KindStats, LatencyStats, LoadReport, LoadWindow, SegmentStats } from '../src/writer-report';
import { DEFAULT_DATABASE_URL, EXPENSE_CATEGORIES, PROPERTIES_PER_ORG, REVENUE_CATEGORIES, STATUSES, VENDORS } from './seed';

export const OP_KINDS = ['insertRevenue', 'insertExpense', 'updateStatus', 'upsertBalance', 'correction', 'void'] as const;
export type OpKind = (typeof OP_KINDS)[number];
/** Relative weights of the operations. */
export type Mix = Record<OpKind, number>;

export const DEFAULT_MIX: Mix = {
  insertRevenue: 30,
  insertExpense: 20,
  updateStatus: 25,
  upsertBalance: 15,
  correction: 5,
  void: 5,
};

/** The application's SQL, verbatim. */
export const LOAD_SQL = {
  insertRevenue: `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description)
    values ($1, $2, $3, $4, $5, $6, $7) returning id`,
  insertExpense: `insert into expenses (organization_id, property_id, occurred_at, amount_cents, category, status, vendor)
    values ($1, $2, $3, $4, $5, $6, $7) returning id`,
  updateRevenueStatus: `update revenues set status = $2, updated_at = now() where id = $1`,
  updateExpenseStatus: `update expenses set status = $2, updated_at = now() where id = $1`,
  upsertBalance: `insert into daily_cash_balances (organization_id, property_id, balance_date, opening_cents, closing_cents)
    values ($1, $2, $3, $4, $5)
    on conflict (organization_id, property_id, balance_date)
    do update set closing_cents = excluded.closing_cents, updated_at = now()`,
  // A correction posted to another month: changes the partition key, so on a partitioned
  // table the row moves to another partition.
  correction: `update revenues set occurred_at = occurred_at + interval '35 days' where id = $1`,
  void: `delete from expenses where id = $1`,
  startState: `select (select max(id) from revenues) as revenues, (select max(id) from expenses) as expenses,
    (select array_agg(id order by id) from organizations) as orgs`,
} as const;

export interface LoadOptions {
  connectionString: string;
  /** Total ops per second over all connections. */
  ratePerSec: number;
  /** Stop by itself after this long; default: run until stop(). */
  durationMs?: number;
  /** Pool size and number of concurrent ops; default 4. */
  concurrency?: number;
  mix?: Partial<Mix>;
  /** Seed of the op/argument sequence (not reproducible across runs once concurrency interleaves). */
  seed?: number;
  /** Use named prepared statements, as ORMs do; default false. */
  prepared?: boolean;
}

export type { KindStats, LatencyStats, LoadReport, LoadWindow, SegmentStats } from '../src/writer-report';

export interface LoadHandle {
  stop(): Promise<LoadReport>;
  pause(): void;
  resume(): void;
  /** Start a new latency segment (e.g. 'baseline', 'copy', 'cutover'); reusing a label appends. */
  mark(label: string): void;
  report(): LoadReport;
  done: Promise<LoadReport>;
}

const MAX_ERRORS = 20;
/** After a stall, at most this much missed schedule is made up at once. */
const MAX_CATCH_UP_MS = 100;

interface Bucket {
  ops: number;
  failures: number;
  latencies: number[];
}
const bucket = (): Bucket => ({ ops: 0, failures: 0, latencies: [] });

export function startLoad(opts: LoadOptions): LoadHandle {
  if (!(opts.ratePerSec > 0)) throw new Error(`ratePerSec must be > 0, got ${opts.ratePerSec}`);
  const concurrency = opts.concurrency ?? 4;
  const mix: Mix = { ...DEFAULT_MIX, ...opts.mix };
  const kinds = OP_KINDS.filter((k) => mix[k] > 0);
  if (kinds.length === 0) throw new Error('mix has no positive weight');
  const totalWeight = kinds.reduce((s, k) => s + mix[k], 0);
  const random = mulberry32(opts.seed ?? 42);
  const pool = new Pool({ connectionString: opts.connectionString, max: concurrency, application_name: 'ps-load' });

  // --- statistics -------------------------------------------------------------------------
  const t0 = performance.now();
  let endedAt: number | null = null;
  const all = bucket();
  const byKind: Record<string, KindStats> = {};
  for (const k of kinds) byKind[k] = { ops: 0, failures: 0, rows: 0 };
  const errors = new Set<string>();
  const windows: Bucket[] = [];
  const segments = new Map<string, Bucket>();
  let segment = 'default';

  const noteError = (where: string, err: unknown) => {
    if (errors.size >= MAX_ERRORS) return;
    const e = err as { message?: string; code?: string };
    errors.add(`${where}: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}`);
  };
  // An idle pooled connection can die (e.g. terminated during a cutover); without a listener
  // that would crash the process. The pool replaces it on the next op.
  pool.on('error', (err) => noteError('pool', err));

  const record = (kind: OpKind, seg: string, started: number, rows: number, err: unknown) => {
    const now = performance.now();
    const latency = now - started;
    const w = Math.floor((now - t0) / 1000);
    while (windows.length <= w) windows.push(bucket());
    if (!segments.has(seg)) segments.set(seg, bucket());
    for (const b of [all, windows[w], segments.get(seg)!]) {
      b.ops++;
      b.latencies.push(latency);
      if (err) b.failures++;
    }
    const k = byKind[kind];
    k.ops++;
    if (err) {
      k.failures++;
      noteError(kind, err);
    } else k.rows += rows;
  };

  const report = (): LoadReport => {
    const elapsed = (endedAt ?? performance.now()) - t0;
    const lastWindow = Math.floor(elapsed / 1000);
    const wins: LoadWindow[] = [];
    for (let i = 0; i <= lastWindow || i < windows.length; i++) {
      const b = windows[i] ?? bucket();
      const p = percentiles(b.latencies);
      wins.push({ t: i * 1000, ops: b.ops, failures: b.failures, p50: p.p50, p99: p.p99 });
    }
    const segs: Record<string, SegmentStats> = {};
    for (const [label, b] of segments) {
      const p = percentiles(b.latencies);
      segs[label] = { ops: b.ops, failures: b.failures, p50: p.p50, p99: p.p99, max: p.max };
    }
    return {
      ops: all.ops,
      failures: all.failures,
      byKind: structuredClone(byKind),
      errors: [...errors],
      latencyMs: percentiles(all.latencies),
      durationMs: round(elapsed),
      opsPerSec: round(elapsed > 0 ? (all.ops * 1000) / elapsed : 0),
      windows: wins,
      segments: segs,
    };
  };

  // --- what the application knows: ids to aim updates at ----------------------------------
  // Max ids are read once and then advanced by our own inserts' returned ids; ids in between
  // may be gone (voided), which is fine: that op just touches 0 rows.
  const known = { revenues: 1, expenses: 1, orgs: [1] as number[] };
  const ready = pool
    .query(LOAD_SQL.startState)
    .then((res) => {
      const r = res.rows[0];
      known.revenues = Number(r.revenues ?? 1);
      known.expenses = Number(r.expenses ?? 1);
      if (r.orgs?.length) known.orgs = r.orgs.map(Number);
    })
    .catch((err) => noteError('start', err));

  const pickInt = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const pickOf = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)];
  const recent = (maxMs: number) => new Date(Date.now() - Math.floor(random() * maxMs));
  const pickKind = (): OpKind => {
    let x = random() * totalWeight;
    for (const k of kinds) if ((x -= mix[k]) < 0) return k;
    return kinds[kinds.length - 1];
  };

  // One op's statement; `table` marks an insert whose returned id advances the known max.
  const buildOp = (kind: OpKind): { name: string; text: string; values: unknown[]; table?: 'revenues' | 'expenses' } => {
    const org = pickOf(known.orgs);
    const property = pickInt(1, PROPERTIES_PER_ORG);
    switch (kind) {
      case 'insertRevenue':
        return {
          name: kind,
          text: LOAD_SQL.insertRevenue,
          table: 'revenues',
          values: [org, property, recent(6 * 3600e3), pickInt(500, 250000), pickOf(REVENUE_CATEGORIES), pickOf(STATUSES), `Folio live-${pickInt(1, 1e9)}`],
        };
      case 'insertExpense':
        return {
          name: kind,
          text: LOAD_SQL.insertExpense,
          table: 'expenses',
          values: [org, property, recent(6 * 3600e3), pickInt(500, 120000), pickOf(EXPENSE_CATEGORIES), pickOf(STATUSES), pickOf(VENDORS)],
        };
      case 'updateStatus':
        return random() < 0.5
          ? { name: 'updateRevenueStatus', text: LOAD_SQL.updateRevenueStatus, values: [pickInt(1, known.revenues), pickOf(STATUSES)] }
          : { name: 'updateExpenseStatus', text: LOAD_SQL.updateExpenseStatus, values: [pickInt(1, known.expenses), pickOf(STATUSES)] };
      case 'upsertBalance': {
        // Recent days: mostly conflicts with the seeded balances (an update), sometimes new rows.
        const day = new Date(Date.now() - pickInt(0, 13) * 86400e3).toISOString().slice(0, 10);
        const opening = pickInt(1_000_000, 9_000_000);
        return { name: kind, text: LOAD_SQL.upsertBalance, values: [org, property, day, opening, opening + pickInt(-150000, 250000)] };
      }
      case 'correction':
        return { name: kind, text: LOAD_SQL.correction, values: [pickInt(1, known.revenues)] };
      case 'void':
        return { name: kind, text: LOAD_SQL.void, values: [pickInt(1, known.expenses)] };
    }
  };

  const runOne = async () => {
    const kind = pickKind();
    const op = buildOp(kind);
    const seg = segment;
    const started = performance.now();
    try {
      const res = await pool.query(opts.prepared ? { name: op.name, text: op.text, values: op.values } : { text: op.text, values: op.values });
      if (op.table) known[op.table] = Math.max(known[op.table], Number(res.rows[0]?.id ?? 0));
      record(kind, seg, started, res.rowCount ?? 0, null);
    } catch (err) {
      record(kind, seg, started, 0, err);
    }
  };

  // --- scheduling: `concurrency` loops share one slot clock spaced 1/rate apart -------------
  const interval = 1000 / opts.ratePerSec;
  let nextSlot = performance.now();
  let stopping = false;
  let paused = false;
  let wake: () => void = () => undefined;
  let pausedUntil: Promise<void> = Promise.resolve();

  const worker = async () => {
    await ready;
    while (!stopping) {
      try {
        if (paused) {
          await pausedUntil;
          continue;
        }
        const now = performance.now();
        nextSlot = Math.max(nextSlot, now - MAX_CATCH_UP_MS);
        const slot = nextSlot;
        nextSlot += interval;
        if (slot > now) await sleep(slot - now);
        if (stopping || paused) continue;
        await runOne();
      } catch (err) {
        noteError('writer', err); // never expected; keep the loop alive
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);

  let finished: Promise<LoadReport> | null = null;
  let resolveDone: (r: LoadReport) => void = () => undefined;
  const done = new Promise<LoadReport>((resolve) => (resolveDone = resolve));
  const timer = opts.durationMs !== undefined ? setTimeout(() => void stop(), opts.durationMs) : null;

  const stop = (): Promise<LoadReport> => {
    finished ??= (async () => {
      stopping = true;
      wake();
      if (timer) clearTimeout(timer);
      await Promise.all(workers);
      endedAt = performance.now();
      await pool.end().catch((err) => noteError('pool', err));
      const r = report();
      resolveDone(r);
      return r;
    })();
    return finished;
  };

  return {
    stop,
    done,
    report,
    pause() {
      if (paused || stopping) return;
      paused = true;
      pausedUntil = new Promise((resolve) => (wake = resolve));
    },
    resume() {
      if (!paused) return;
      paused = false;
      nextSlot = performance.now(); // no burst for the paused time
      wake();
    },
    mark(label: string) {
      segment = label;
      if (!segments.has(label)) segments.set(label, bucket());
    },
  };
}

function percentiles(values: number[]): LatencyStats {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round(sorted[sorted.length - 1]) };
}

const round = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Small seeded PRNG, so a run's op sequence is repeatable. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseMix(spec: string | undefined): Partial<Mix> | undefined {
  if (!spec) return undefined;
  const mix: Partial<Mix> = {};
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=');
    if (!(OP_KINDS as readonly string[]).includes(k) || !(Number(v) >= 0)) throw new Error(`bad --mix entry '${part}'; kinds: ${OP_KINDS.join(', ')}`);
    mix[k as OpKind] = Number(v);
  }
  return mix;
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '500' },
      duration: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
      'database-url': { type: 'string' },
      mix: { type: 'string' },
      seed: { type: 'string' },
      prepared: { type: 'boolean', default: false },
    },
  });
  const handle = startLoad({
    connectionString: values['database-url'] ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    ratePerSec: Number(values.rate),
    durationMs: values.duration ? Number(values.duration) * 1000 : undefined,
    concurrency: Number(values.concurrency),
    mix: parseMix(values.mix),
    seed: values.seed ? Number(values.seed) : undefined,
    prepared: values.prepared,
  });
  // Ctrl-C ends the run early and still prints the report.
  process.once('SIGINT', () => void handle.stop());
  process.once('SIGTERM', () => void handle.stop());
  const progress = setInterval(() => {
    const r = handle.report();
    console.error(`t=${Math.round(r.durationMs / 1000)}s ops=${r.ops} failures=${r.failures} ops/s=${r.opsPerSec} p99=${r.latencyMs.p99}ms`);
  }, 5000);
  const report = await handle.done;
  clearInterval(progress);
  console.log(JSON.stringify(report, null, 2));
}

if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
