// Worker configuration from the environment. Connection strings stay in the worker process:
// workflows and histories only ever see a target's name.
import { DEFAULT_TASK_QUEUE } from './shared';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export function taskQueue(): string {
  return process.env.TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

/** `DATABASE_URL` is target `default`; `DATABASE_URL_<NAME>` adds target `<name>` (lower-cased). */
export function databaseTargets(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const targets: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!v) continue;
    if (k === 'DATABASE_URL') targets.default = v;
    else if (k.startsWith('DATABASE_URL_')) targets[k.slice('DATABASE_URL_'.length).toLowerCase()] = v;
  }
  return targets;
}
