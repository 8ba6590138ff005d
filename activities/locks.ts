// Lock discipline for every statement of ours that can wait on an application's lock. Writers
// lock across statements in any order (the table, the partitioned table through the dual-write
// trigger, referenced tables through foreign key checks, sequences), so no order of ours is safe
// on its own. What is safe: a writer that queues behind a lock of ours runs its deadlock check
// only deadlock_timeout after it began waiting, so if every lock wait of ours ends within less
// than deadlock_timeout of our first lock, ours is the statement that gives up (55P03) in any
// cycle, never the writer's. `lockedTx` runs one short transaction that way: each statement gets
// lock_timeout and statement_timeout set to what is left of one budget (the caller's
// lockTimeoutMs, capped below the server's deadlock_timeout), and the whole transaction is
// retried with backoff when the budget runs out.
import { Context } from '@temporalio/activity';
import { lockGiveUp, retryable } from '../src/errors';
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { budgetSql } from '../src/lockssql';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../src/input';

/** Share of deadlock_timeout a budget may use: the rest covers round trips between statements. */
const DEADLOCK_SHARE = 0.75;

export interface LockedTx {
  client: pg.PoolClient;
  /** Budget of this transaction in ms (lockTimeoutMs capped below deadlock_timeout). */
  budgetMs: number;
  /** Runs a statement that may wait on a lock: both its lock waits and its run end within the budget. */
  q(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Runs a long statement once every lock is held (data movement): lock waits still within the budget, no statement limit. */
  long(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  /** Whether the last statement run set a statement_timeout (so a 57014 is the budget's). */
  limited(): boolean;
  spent(): Error;
}

export interface LockOpts {
  /** What runs, for messages: `cutover of public.revenues`. */
  what: string;
  lockTimeoutMs?: number;
  /** Tries inside this activity attempt before failing it (Temporal retries the activity then). */
  attempts?: number;
  /** The transaction's BEGIN, e.g. with an isolation level. */
  begin?: string;
  /**
   * Budget of the first try, doubling each try up to the full budget: a transaction that takes
   * a lock every writer queues behind (the cutover's) waits briefly and often rather than long
   * and rarely, so the writers it holds up wait about as briefly.
   */
  firstBudgetMs?: number;
  /** Longest wait between tries (ms; default 2 s). */
  maxBackoffMs?: number;
  /** Where to look, while a statement of ours waits, for the lock it waits for and who holds it (default: the pool it runs on). */
  probe?: pg.Pool;
  /** Called with the probe's pool halfway through a wait of backend `pid` (the cutover's cancelBlockersAfter). */
  onBlocked?: (pool: pg.Pool, pid: number) => Promise<void>;
}

/** LockOpts' `what` for a step on a relation: `rollback of public.revenues`. */
export function whatOf(step: string, schema: string, name: string): string {
  return `${step} of ${schema}.${name}`;
}

/** What a statement of ours waited for, and the sessions blocking it, as seen while it waited. */
export async function blockersOf(pool: pg.Pool, pid: number): Promise<string | null> {
  const rows = (await pool.query(sqlFile('catalog/lock_blockers'), [pid])).rows;
  if (!rows.length) return null;
  const held = rows.map(
    (r) =>
      `session ${r.pid} (application ${JSON.stringify(r.application_name ?? '')}, user ${r.usename}, ${r.state}` +
      `${r.xact_s !== null ? `, in a transaction for ${r.xact_s} s` : ''}: ${JSON.stringify(r.query ?? '')})`,
  );
  return `it waited for ${rows[0].mode} on ${rows[0].object}, held by ${held.join(' and ')}`;
}

/** The server's deadlock_timeout in ms. */
export async function deadlockTimeoutMs(c: pg.ClientBase): Promise<number> {
  return Number((await c.query(sqlFile('catalog/deadlock_timeout'))).rows[0].ms);
}

/** The lock budget: lockTimeoutMs, but never as long as deadlock_timeout. */
export function budgetFor(lockTimeoutMs: number, deadlockMs: number): number {
  return Math.max(1, Math.min(lockTimeoutMs, Math.floor(deadlockMs * DEADLOCK_SHARE)));
}

/** A lock wait of ours ran out (lock_timeout), or the budget did (statement_timeout we set), or we were a deadlock victim. */
export function isLockGiveUp(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === '55P03' || code === '40P01';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function heartbeat(details: unknown) {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (a direct call): nothing to report to.
  }
}

/**
 * Runs `body` in one transaction under the lock budget, retried with backoff (jittered, doubling
 * from 100 ms) up to `attempts` times while it gives up on a lock. Afterwards the failure is a
 * retryable `LockTimeout` naming `what`. Returns the body's value and the tries it took.
 */
export async function lockedTx<T>(
  on: pg.Pool | { client: pg.PoolClient },
  opts: LockOpts,
  body: (tx: LockedTx) => Promise<T>,
): Promise<{ value: T; attempts: number; budgetMs: number }> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  let budgetMs = 0;
  let last: unknown;
  let attempt = 1;
  // The last thing seen blocking a statement of ours (pg_blocking_pids), for the failure message.
  let blocked: string | null = null;
  let slowest = 0;
  const probePool = opts.probe ?? ('client' in on ? undefined : on);
  const probe: Probe = {
    watch(pid, waitMs) {
      if (!probePool || !pid) return () => undefined;
      const timer = setTimeout(
        () => {
          blockersOf(probePool, pid).then(
            (b) => void (b && (blocked = b)),
            () => undefined,
          );
          opts.onBlocked?.(probePool, pid).catch(() => undefined);
        },
        Math.max(1, Math.floor(waitMs / 2)),
      );
      return () => clearTimeout(timer);
    },
    ran(ms) {
      slowest = Math.max(slowest, ms);
    },
  };
  const once = async (c: pg.PoolClient) => {
    budgetMs = budgetFor(opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, await deadlockTimeoutMs(c));
    if (opts.firstBudgetMs) budgetMs = Math.min(budgetMs, opts.firstBudgetMs * 2 ** (attempt - 1));
    const tx = boundedTx(c, budgetMs, opts.what, probe);
    try {
      return await inTx(c, () => body(tx), opts.begin);
    } catch (err) {
      // A statement the body ran directly inherits the statement_timeout we set last.
      if ((err as { code?: string }).code === '57014' && tx.limited()) throw Object.assign(tx.spent(), { cause: err });
      throw err;
    }
  };
  for (; attempt <= attempts; attempt++) {
    try {
      const value = 'client' in on ? await once(on.client) : await withClient(on, once);
      return { value, attempts: attempt, budgetMs };
    } catch (err) {
      if (!isLockGiveUp(err)) throw err;
      last = err;
      heartbeat({ lockAttempt: attempt, what: opts.what });
      if (attempt < attempts) await sleep(Math.min(opts.maxBackoffMs ?? 2000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random()));
    }
  }
  throw retryable(
    'LockTimeout',
    `${opts.what} could not take its lock within ${budgetMs} ms (${attempts} tries; lockTimeoutMs, kept below the server's deadlock_timeout ` +
      `so that an application transaction is never the one that fails). ` +
      (blocked
        ? `Last seen: ${blocked}. `
        : `No other session was seen holding what it waited for: its own statements used the budget (the longest ran ${slowest} ms). `) +
      `Nothing was changed; retrying with backoff`,
    last,
    { blocked },
  );
}

/** What a LockTimeout of lockedTx last saw holding the lock it waited for; null when nobody (its own statements used the budget) or when not looked for. */
export function blockedBy(err: unknown): string | null {
  const d = (err as { type?: string; details?: unknown[] }).details;
  return (err as { type?: string }).type === 'LockTimeout' && Array.isArray(d) ? ((d[0] as { blocked?: string | null })?.blocked ?? null) : null;
}

interface Probe {
  /** Looks, halfway through `waitMs`, for what backend `pid` waits for; returns the cancel. */
  watch(pid: number | undefined, waitMs: number): () => void;
  /** A statement of ours ran for `ms`. */
  ran(ms: number): void;
}

function boundedTx(c: pg.PoolClient, budgetMs: number, what: string, probe?: Probe): LockedTx {
  // The budget counts from the first statement: it bounds the span from our first lock to the end
  // of our last possible lock wait, whatever the statements in between took.
  let deadline: number | undefined;
  const left = () => {
    deadline ??= Date.now() + budgetMs;
    return deadline - Date.now();
  };
  const spent = () => lockGiveUp(`${what}: lock budget of ${budgetMs} ms spent before the transaction could finish its locked statements`);
  let limited = false;
  const run = async (text: string, params: unknown[] | undefined, statementLimit: boolean) => {
    let ms = Math.floor(left());
    if (ms < 1) {
      if (statementLimit) throw spent();
      // Every lock is held by now: a long statement that would still wait gives up at once.
      ms = 1;
    }
    limited = statementLimit;
    const t0 = Date.now();
    const stop = probe?.watch((c as unknown as { processID?: number }).processID, ms) ?? (() => undefined);
    try {
      if (params?.length) {
        await c.query(budgetSql(ms, statementLimit));
        return await c.query(text, params);
      }
      const r = (await c.query(budgetSql(ms, statementLimit, text))) as unknown as pg.QueryResult | pg.QueryResult[];
      return Array.isArray(r) ? r[r.length - 1] : r;
    } catch (err) {
      // The statement_timeout we set: the budget ran out while a statement waited or ran.
      if ((err as { code?: string }).code === '57014' && statementLimit) throw Object.assign(spent(), { cause: err });
      throw err;
    } finally {
      stop();
      probe?.ran(Date.now() - t0);
    }
  };
  return {
    client: c,
    budgetMs,
    limited: () => limited,
    spent,
    q: (text, params) => run(text, params, true),
    long: (text, params) => run(text, params, false),
  };
}
