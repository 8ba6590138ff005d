// The load generator's counts (src/loadrun.ts): per (segment, table, kind) the writes, failures,
// rows and a 2% log histogram of latencies, summed into the run's summary.

export interface WriteStats {
  /** Statements that succeeded (one op each). */
  writes: number;
  /** Statements that failed. */
  failedWrites: number;
  /** Rows they touched (a clone of a row deleted meanwhile touches none). */
  rows: number;
  /** `kind on table: message (SQLSTATE)` of the first failure. */
  firstError: string | null;
  /** Of writes and failed writes, from a 2% log histogram (max exact). */
  latencyMs: { p50: number; p99: number; max: number };
}
export interface LoadSummary extends WriteStats {
  durationMs: number;
  opsPerSec: number;
  byKind: Record<string, WriteStats>;
  /** Per mark() label (the segment current when each op started); before the first mark, `segment` or 'load'. */
  bySegment: Record<string, WriteStats & { byKind: Record<string, WriteStats> }>;
  byTable: Record<string, WriteStats & { byKind: Record<string, WriteStats> }>;
  /** `schema.table kind` → why it did not run (only kinds with a weight in the mix). */
  skipped: Record<string, string>;
  committed?: {
    inserted: { table: string; key: string[] }[];
    deleted: { table: string; key: string[] }[];
    moved: { table: string; key: string[]; by: string }[];
  };
}

const LOG_STEP = Math.log(1.02);

interface Acc {
  writes: number;
  failedWrites: number;
  rows: number;
  firstError: string | null;
  hist: Map<number, number>;
  max: number;
}
const acc = (): Acc => ({ writes: 0, failedWrites: 0, rows: 0, firstError: null, hist: new Map(), max: 0 });
function merge(into: Acc, a: Acc): void {
  into.writes += a.writes;
  into.failedWrites += a.failedWrites;
  into.rows += a.rows;
  into.firstError ??= a.firstError;
  into.max = Math.max(into.max, a.max);
  for (const [b, c] of a.hist) into.hist.set(b, (into.hist.get(b) ?? 0) + c);
}
function stats(a: Acc): WriteStats {
  const total = a.writes + a.failedWrites;
  const at = (p: number) => {
    if (!total) return 0;
    const rank = Math.ceil(p * total);
    let seen = 0;
    for (const b of [...a.hist.keys()].sort((x, y) => x - y)) {
      seen += a.hist.get(b)!;
      if (seen >= rank) return round(Math.min(a.max, 0.01 * Math.exp(b * LOG_STEP)));
    }
    return round(a.max);
  };
  return {
    writes: a.writes,
    failedWrites: a.failedWrites,
    rows: a.rows,
    firstError: a.firstError,
    latencyMs: { p50: at(0.5), p99: at(0.99), max: round(a.max) },
  };
}
const round = (x: number) => Math.round(x * 100) / 100;

/** The counts of one run, from its start (construction) to `endedAt`. */
export class LoadStats {
  readonly committed: NonNullable<LoadSummary['committed']> = { inserted: [], deleted: [], moved: [] };
  endedAt: number | null = null;
  private readonly t0 = performance.now();
  private readonly accs = new Map<string, { segment: string; table: string; kind: string; acc: Acc }>();

  note(seg: string, table: string, kind: string, started: number, rows: number, err: unknown): void {
    const id = `${seg}\u0000${table}\u0000${kind}`;
    let e = this.accs.get(id);
    if (!e) this.accs.set(id, (e = { segment: seg, table, kind, acc: acc() }));
    const a = e.acc;
    const ms = performance.now() - started;
    a.max = Math.max(a.max, ms);
    const b = ms <= 0.01 ? 0 : Math.ceil(Math.log(ms / 0.01) / LOG_STEP);
    a.hist.set(b, (a.hist.get(b) ?? 0) + 1);
    if (err) {
      a.failedWrites++;
      const x = err as { message?: string; code?: string };
      a.firstError ??= `${kind} on ${table}: ${x?.message ?? String(err)}${x?.code ? ` (${x.code})` : ''}`;
    } else {
      a.writes++;
      a.rows += rows;
    }
  }

  summary(skipped: Record<string, string>, poolError: string | null, record: boolean): LoadSummary {
    const all = acc();
    const byKind = new Map<string, Acc>();
    const bySegment = new Map<string, { acc: Acc; byKind: Map<string, Acc> }>();
    const byTable = new Map<string, { acc: Acc; byKind: Map<string, Acc> }>();
    const into = <T>(m: Map<string, T>, k: string, make: () => T) => m.get(k) ?? (m.set(k, make()), m.get(k)!);
    const group = () => ({ acc: acc(), byKind: new Map<string, Acc>() });
    for (const { segment: s, table, kind, acc: a } of this.accs.values()) {
      merge(all, a);
      merge(into(byKind, kind, acc), a);
      for (const g of [into(bySegment, s, group), into(byTable, table, group)]) {
        merge(g.acc, a);
        merge(into(g.byKind, kind, acc), a);
      }
    }
    const flat = (m: Map<string, Acc>) => Object.fromEntries([...m].map(([k, a]) => [k, stats(a)]));
    const nested = (m: Map<string, { acc: Acc; byKind: Map<string, Acc> }>) =>
      Object.fromEntries([...m].map(([k, g]) => [k, { ...stats(g.acc), byKind: flat(g.byKind) }]));
    const elapsed = (this.endedAt ?? performance.now()) - this.t0;
    const s = stats(all);
    if (!s.firstError && poolError) s.firstError = `pool: ${poolError}`;
    return {
      ...s,
      durationMs: Math.round(elapsed),
      opsPerSec: round(elapsed > 0 ? ((all.writes + all.failedWrites) * 1000) / elapsed : 0),
      byKind: flat(byKind),
      bySegment: nested(bySegment),
      byTable: nested(byTable),
      skipped,
      ...(record ? { committed: this.committed } : {}),
    };
  }
}
