// What a live writer reports: ops, failures and latencies, overall, per second and per segment.
// The rehearsal's report carries it; the demo's writer (demo/load.ts) produces it.

export interface KindStats {
  ops: number;
  failures: number;
  rows: number;
}
export interface LatencyStats {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
export interface LoadWindow {
  t: number;
  ops: number;
  failures: number;
  p50: number;
  p99: number;
}
export interface SegmentStats {
  ops: number;
  failures: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LoadReport {
  ops: number;
  failures: number;
  byKind: Record<string, KindStats>;
  /** First 20 distinct `kind: message` of failed ops. */
  errors: string[];
  latencyMs: LatencyStats;
  durationMs: number;
  opsPerSec: number;
  /** 1 s windows by completion time; t is ms since start; empty windows are kept (stalls show). */
  windows: LoadWindow[];
  /** Per mark() label, ops attributed to the segment current when they started. */
  segments: Record<string, SegmentStats>;
}
