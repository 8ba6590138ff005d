// A copy stream's progress as the workflow sees it: a fixed number of progress signals per
// stream whatever the table's size (the history stays flat), one per tenth of the estimate plus
// the first few changes of the brake, and the copy-rate metric.
import type { CopyProgress } from '../src/types';
import type { switchoverMetrics } from '../src/metrics';

/** A slowdown this long (ms) is signalled at once rather than with the next tenth of progress. */
export const STALL_SIGNAL_MS = 5_000;

/** Where a stream is: its recorded position, moved only by a committed batch. */
export interface StreamPosition {
  cursor: string[] | null;
  copied: number;
  batches: number;
}

export class ProgressReporter {
  /** Times the brake (not the operator) slowed the stream down. */
  brakes = 0;
  /** The reason the stream slows down or waits (null: none). */
  braking: string | null = null;
  private lastBucket = -1;
  private signalled: string | null = null;
  private brakeSignals = 0;
  private operatorHold = false;
  private brakingSince = 0;
  private readonly startRows: number;

  /** `send`: the progress signal to the workflow; `t0`: when the stream's attempt started. */
  constructor(
    private readonly stream: { table: string; stream: number; estimatedRows: number },
    private readonly pos: StreamPosition,
    private readonly metrics: ReturnType<typeof switchoverMetrics>,
    private readonly send: (p: CopyProgress) => Promise<unknown>,
    private readonly t0: number,
  ) {
    this.startRows = pos.copied;
  }

  /** Signals the progress when it reached another tenth (or `done`, or `force`); the rate metric each time. */
  async report(done: boolean, force = false): Promise<void> {
    const { copied, cursor } = this.pos;
    const rate = (copied - this.startRows) / Math.max(0.001, (Date.now() - this.t0) / 1000);
    this.metrics.copyRate.set(done ? 0 : rate);
    const bucket = Math.min(10, Math.floor((10 * copied) / Math.max(1, this.stream.estimatedRows)));
    if (!done && !force && bucket === this.lastBucket) return;
    this.lastBucket = bucket;
    const p: CopyProgress = {
      table: this.stream.table,
      stream: this.stream.stream,
      rowsCopied: copied,
      rowsPerSec: Math.round(rate),
      cursor,
      done,
      brakes: this.brakes,
      // A finished stream slows nothing down: its last batch's slowdown is no longer the news.
      brake: done ? null : this.braking,
    };
    // Progress is best effort: a closed or unreachable workflow must not fail the copy.
    await this.send(p).catch(() => undefined);
  }

  /**
   * The reason the stream slows down or waits now (null: none). Every progress signal carries it;
   * an operator's hold is signalled each time it changes; a slowdown of the brake or the
   * adaptive throttle only once it has lasted STALL_SIGNAL_MS (a stream that stalls must
   * say why), once per stream, and its end: the history stays the same size at any row count.
   */
  async setBraking(why: string | null, operator: boolean): Promise<void> {
    const was = this.braking;
    const wasOperator = this.operatorHold;
    this.braking = why;
    this.operatorHold = operator && why !== null;
    if (why !== null && was === null) this.brakingSince = Date.now();
    if (operator ? why !== was : wasOperator && why !== was) {
      this.signalled = why;
      await this.report(false, true);
    } else if (why === null ? this.signalled !== null : this.signalled === null && this.brakeSignals < 1 && Date.now() - this.brakingSince >= STALL_SIGNAL_MS) {
      if (why !== null) this.brakeSignals++;
      this.signalled = why;
      await this.report(false, true);
    }
  }
}
