// Every set of activity options the workflows use, named for what it is for. Every activity
// heartbeats every 2 s while it runs (activities/index.ts), so a lost worker is noticed within
// HEARTBEAT_TIMEOUT in any stage, and a cancellation (reject, workflow cancel) reaches it; the
// workflow waits until a cancelled activity has stopped before it rolls back.
import { ActivityCancellationType, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';

export const HEARTBEAT_TIMEOUT = '10s';
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;
const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };

/** A stage's short step: catalog reads, DDL in one transaction, bookkeeping. */
export const STEP: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: HEARTBEAT_TIMEOUT, cancellationType, retry };

/** A long stage (backup, copy, index builds, verification, a wait on another workflow): heartbeats with its position. */
export const LONG: ActivityOptions = { ...STEP, startToCloseTimeout: '24 hours' };

/** Cutover: each attempt waits at most lock_timeout for its lock; Temporal backs off between attempts. */
export const CUTOVER: ActivityOptions = {
  ...STEP,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 20 },
};

/** The rollback: it must finish, so it is retried longer (a lock held by the application, a restart). */
export const ROLLBACK: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { ...retry, maximumAttempts: 20 },
};

/** Partition maintenance (a Schedule's run): a lock timeout behind a long transaction is retried with backoff. */
export const MAINTENANCE: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { ...retry, maximumInterval: '1 minute', maximumAttempts: 10 },
};

/** The rehearsal's live writer: runs until told to stop; a retry starts a new writer that reads the last order. */
export const WRITER: ActivityOptions = { startToCloseTimeout: '24 hours', heartbeatTimeout: '20s', retry: { ...retry, maximumAttempts: 3 } };

/** An order to the live writer (run, pause, stop), answered with its counts. */
export const WRITER_ORDER: ActivityOptions = { startToCloseTimeout: '1 minute', heartbeatTimeout: HEARTBEAT_TIMEOUT, retry: { ...retry, maximumAttempts: 3 } };

/** Options with a summary naming the stage, table and range, so the history reads as a log. */
export function opts(summary: string, base: ActivityOptions = STEP): ActivityOptions {
  return { ...base, summary };
}

/** The cutover's options inside a cutover window: it tries until the window closes (`deadline`, epoch ms), then the workflow waits for the next. */
export function cutoverOptions(deadline?: number): ActivityOptions {
  if (deadline === undefined) return CUTOVER;
  // Retried without a count (maximumAttempts unset) until the window's end.
  const { maximumAttempts: _, ...retry } = CUTOVER.retry ?? {};
  return { ...CUTOVER, scheduleToCloseTimeout: Math.max(1000, deadline - Date.now()), retry };
}
