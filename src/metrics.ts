// Our metrics, recorded through the SDK's metric meter so they are exported with the SDK's own
// (Prometheus at PROMETHEUS_BIND_ADDRESS, see bin/worker.ts). Without a configured exporter the
// meter records nothing, so activities call these unconditionally.
import { Context } from '@temporalio/activity';
import type { MetricMeter } from '@temporalio/common';

/** Name → meaning; the README's metrics list is this table. */
export const METRICS = {
  switchover_rows_copied: 'counter: rows inserted into <table>_partitioned by the copy (tags: table, stream)',
  switchover_copy_rows_per_second: 'gauge: the copy rate of a stream since its attempt started (tags: table, stream)',
  switchover_throttle_pause_ms: 'gauge: pause after each copy batch (throttle.pauseMs) (tags: table, stream)',
  switchover_copy_batch_size: 'gauge: rows per copy batch (batchSize) (tags: table, stream)',
  switchover_verify_progress: "gauge: share of a table's verification done, 0 to 1 (tags: table)",
  switchover_verify_mismatched_ranges: 'gauge: ranges whose counts, sums or hashes differ after verification (tags: table)',
  switchover_cutover_lock_ms: 'histogram: time the ACCESS EXCLUSIVE lock was held at cutover, in ms (tags: table)',
} as const;

/** The instruments, tagged with the table (and stream), on the current activity's meter. */
export function switchoverMetrics(tags: { table: string; stream?: number }, meter: MetricMeter = Context.current().metricMeter) {
  const m = meter.withTags(tags.stream === undefined ? { table: tags.table } : { table: tags.table, stream: String(tags.stream) });
  const d = METRICS;
  return {
    rowsCopied: m.createCounter('switchover_rows_copied', 'rows', d.switchover_rows_copied),
    copyRate: m.createGauge('switchover_copy_rows_per_second', 'float', 'rows/s', d.switchover_copy_rows_per_second),
    throttlePause: m.createGauge('switchover_throttle_pause_ms', 'int', 'ms', d.switchover_throttle_pause_ms),
    batchSize: m.createGauge('switchover_copy_batch_size', 'int', 'rows', d.switchover_copy_batch_size),
    verifyProgress: m.createGauge('switchover_verify_progress', 'float', 'ratio', d.switchover_verify_progress),
    verifyMismatches: m.createGauge('switchover_verify_mismatched_ranges', 'int', 'ranges', d.switchover_verify_mismatched_ranges),
    cutoverLock: m.createHistogram('switchover_cutover_lock_ms', 'float', 'ms', d.switchover_cutover_lock_ms),
  };
}
