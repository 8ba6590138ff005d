// Every activity, built around the worker's dependencies (pools). Workflows import only the type.
import { Context } from '@temporalio/activity';
import type { Deps } from './context';
import { copyActivities } from './copy';
import { indexActivities } from './indexes';
import { recheckActivities } from './recheck';
import { cutoverActivities } from './cutover';
import { partitionActivities } from './maintain-partitions';
import { retentionActivities } from './retention';
import { backupActivities } from './backup';
import { prepareActivities } from './prepare';
import { triggerActivities } from './triggers';
import { rollbackActivities } from './rollback-table';
import { preflightActivities } from './preflight';
import { rehearsalActivities } from './rehearsal-checks';
import { stateActivities } from './bookkeeping';
import { verifyActivities } from './verify';
import { attachActivities } from './attach';
import { fleetActivities } from './fleet-targets';
import { splitActivities } from './split';
import { splitCutoverActivities } from './split-cutover';

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

/** Every module's activities, stages in runbook order: a new stage is one line here. */
const MODULES = [
  preflightActivities,
  stateActivities,
  backupActivities,
  prepareActivities,
  triggerActivities,
  copyActivities,
  recheckActivities,
  indexActivities,
  verifyActivities,
  cutoverActivities,
  attachActivities,
  rollbackActivities,
  partitionActivities,
  retentionActivities,
  splitActivities,
  splitCutoverActivities,
  rehearsalActivities,
  fleetActivities,
] as const;
type Both<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type ModuleActivities = Both<ReturnType<(typeof MODULES)[number]>>;

export function createActivities(deps: Deps & { searchAttributes?: boolean }) {
  const modules = Object.assign({}, ...MODULES.map((m) => m(deps))) as ModuleActivities;
  return heartbeating({
    /** What this worker's Temporal server supports (checked once at worker start). */
    async capabilities(): Promise<{ searchAttributes: boolean }> {
      return { searchAttributes: !!deps.searchAttributes };
    },
    ...modules,
  });
}

export type Activities = ReturnType<typeof createActivities>;
