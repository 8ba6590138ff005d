// Helpers for the failure tests: database dumps to prove "nothing changed", the failure a
// workflow ended with, and what its history says about attempts and retries.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Activities } from '../activities';

const run = promisify(execFile);

/** pg_dump of a database (schema and data, or schema only), without our bookkeeping schema if asked. */
export async function dump(url: string, opts: { schemaOnly?: boolean; withState?: boolean } = {}): Promise<string> {
  const args = ['--no-owner', '--no-privileges', ...(opts.schemaOnly ? ['--schema-only'] : []), ...(opts.withState ? [] : ['-N', 'partition_switchover'])];
  const { stdout } = await run('pg_dump', [...args, url], { maxBuffer: 256 * 1024 * 1024 });
  // Comments and the random \restrict key differ between dumps of the same database.
  return stdout
    .split('\n')
    .filter((l) => !l.startsWith('--') && !/^\\(un)?restrict /.test(l))
    .join('\n');
}

export interface Failure {
  type?: string;
  message: string;
  /** Messages of the whole cause chain, outermost first. */
  chain: string[];
  nonRetryable?: boolean;
}

/** Awaits a workflow that must fail; returns its failure (the workflow's own error, not the wrapper). */
export async function failureOf(handle: WorkflowHandle): Promise<Failure> {
  try {
    await handle.result();
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const chain: string[] = [];
    for (let e: unknown = err.cause; e; e = (e as { cause?: unknown }).cause) chain.push((e as Error).message);
    const f = err.cause as ApplicationFailure;
    return { type: f?.type ?? undefined, message: f?.message ?? '', chain, nonRetryable: f?.nonRetryable ?? undefined };
  }
  throw new Error(`workflow ${handle.workflowId} completed, but it was expected to fail`);
}

/** Activity attempts and workflow task failures recorded in a workflow's history. */
export async function historyFacts(handle: WorkflowHandle): Promise<{ attempts: Record<string, number[]>; workflowTaskFailures: number }> {
  const history = await handle.fetchHistory();
  const names = new Map<string, string>();
  const attempts: Record<string, number[]> = {};
  let workflowTaskFailures = 0;
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) names.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const name = names.get(String(started.scheduledEventId)) ?? '?';
      (attempts[name] ??= []).push(started.attempt ?? 1);
    }
    if (e.workflowTaskFailedEventAttributes) workflowTaskFailures++;
  }
  return { attempts, workflowTaskFailures };
}

/** What to do after an activity ran for real in one workflow: throw (the default) or act on the database. */
export interface Injection {
  activity: string;
  /** Runs after the activity; when absent, the activity fails with a non-retryable `Injected` failure. */
  action?: (args: unknown[]) => Promise<void>;
  /** Run `action` before the activity instead (e.g. to change the database just before it looks). */
  before?: boolean;
}

/**
 * Wraps activities so that, for the workflows named in `plan`, the named activity runs for real
 * and then the injection happens (once per workflow), as if the worker failed right after the
 * side effect or the database changed under it.
 */
export function injectAfter(plan: Map<string, Injection>) {
  return (acts: Activities): Activities => {
    const wrapped: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(acts)) {
      wrapped[name] = async (...args: unknown[]) => {
        const wf = Context.current().info.workflowExecution?.workflowId ?? '';
        const first = plan.get(wf);
        if (first?.activity === name && first.before) {
          plan.delete(wf);
          await first.action?.(args);
        }
        const out = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
        const inj = plan.get(wf);
        if (inj?.activity === name) {
          plan.delete(wf);
          if (inj.action) await inj.action(args);
          else throw ApplicationFailure.nonRetryable(`injected failure after ${name} ran`, 'Injected');
        }
        return out;
      };
    }
    return wrapped as Activities;
  };
}
