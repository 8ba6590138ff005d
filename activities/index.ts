// Every activity, built around the worker's dependencies (pools). Workflows import only the type.
import { Context } from '@temporalio/activity';
import type { Deps } from './context';
import { copyActivities } from './copy';
import { indexActivities } from './indexes';
import { recheckActivities } from './recheck';
import { cutoverActivities } from './cutover';
import { partitionActivities } from './partitions';
import { backupActivities } from './backup';
import { prepareActivities } from './prepare';
import { triggerActivities } from './triggers';
import { rollbackActivities } from './rollback';
import { preflightActivities } from './preflight';
import { rehearsalActivities } from './rehearsal';
import { stateActivities } from './state';
import { verifyActivities } from './verify';

/** How often every activity heartbeats while it runs (the workflows' heartbeatTimeout is 10 s). */
export const HEARTBEAT_EVERY_MS = 2000;

/**
 * Wraps each activity so it heartbeats every HEARTBEAT_EVERY_MS while it runs: a worker lost in
 * any stage is noticed within the heartbeat timeout, and a cancellation (reject, workflow
 * cancel) reaches the activity (ctx.cancellationSignal). Activities that heartbeat with details
 * keep doing so; nothing reads heartbeat details back.
 */
export function heartbeating<T extends Record<string, (...args: never[]) => Promise<unknown>>>(acts: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(acts)) {
    wrapped[name] = async (...args: never[]) => {
      const ctx = Context.current();
      ctx.heartbeat();
      const timer = setInterval(() => ctx.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        return await fn(...args);
      } finally {
        clearInterval(timer);
      }
    };
  }
  return wrapped as T;
}

export function createActivities(deps: Deps & { searchAttributes?: boolean }) {
  return heartbeating({
    /** What this worker's Temporal server supports (checked once at worker start). */
    async capabilities(): Promise<{ searchAttributes: boolean }> {
      return { searchAttributes: !!deps.searchAttributes };
    },
    ...preflightActivities(deps),
    ...stateActivities(deps),
    ...backupActivities(deps),
    ...prepareActivities(deps),
    ...triggerActivities(deps),
    ...copyActivities(deps),
    ...recheckActivities(deps),
    ...indexActivities(deps),
    ...verifyActivities(deps),
    ...cutoverActivities(deps),
    ...rollbackActivities(deps),
    ...partitionActivities(deps),
    ...rehearsalActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
