// Small deterministic helpers for workflow code.
import { ApplicationFailure, TemporalFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeIssues } from '../src/input';
export { copyStreamsFor } from '../src/streams';
export { durationMs } from '../src/durations';

/** The innermost useful message of a Temporal failure chain. */
export function errorMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  let msg = e?.message ?? String(err);
  // ActivityFailure says only "Activity task failed"; its cause has the real message.
  while (e?.cause && /^(Activity task failed|Child Workflow execution failed)/.test(e.message ?? '')) {
    e = e.cause as typeof e;
    msg = e?.message ?? msg;
  }
  return msg;
}

/** The type of the first ApplicationFailure in a failure chain (e.g. UnsupportedSchema under an ActivityFailure). */
export function errorType(err: unknown): string | undefined {
  for (let e = err as { type?: string | null; cause?: unknown } | undefined; e; e = e.cause as typeof e) if (e.type) return e.type;
  return undefined;
}

/**
 * The workflow's own failure for `err`: the activity's type and message at the top (not "Activity
 * task failed"). A non-Temporal error (a bug in workflow code) is returned as is, so its workflow
 * task is retried and a fixed worker can carry on.
 */
export function ownFailure(err: unknown, message = errorMessage(err)): unknown {
  if (!(err instanceof TemporalFailure)) return err;
  if (err instanceof ApplicationFailure && message === err.message) return err;
  return ApplicationFailure.create({ type: errorType(err) ?? 'SwitchoverFailed', message, nonRetryable: true, cause: err });
}

/** The workflow's input, parsed; else a non-retryable InvalidInput naming each offending field. */
export function parseInput<T extends z.ZodType>(schema: T, raw: unknown, workflowType: string, advice = 'Nothing was changed.'): z.output<T> {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  throw ApplicationFailure.create({
    type: 'InvalidInput',
    message: `invalid ${workflowType} input: ${describeIssues(parsed.error)}. ${advice}`,
    nonRetryable: true,
  });
}
