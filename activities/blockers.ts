// A cutover that gets through behind a long-running session (cutover.cancelBlockersAfter, off by
// default): once the cutover has tried that long since its first attempt, each lock wait of a try
// cancels, halfway through its budget, the sessions that hold what it waits for
// (sql/catalog/cancel_blockers.sql: pg_cancel_backend, or pg_terminate_backend with `terminate`),
// never ours, never one of a role in `protectRoles`. Each is named in the log, the heartbeat, the
// activity's result or failure (the history) and the audit table.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { durationMs } from '../src/durations';
import type { CutoverSpec } from '../src/input';
import type { CancelledSession, TablePlan } from '../src/types';
import { runId, workflowId } from './context';
import { auditRow } from './bookkeeping';
import type { LockOpts } from './locks';

/** One line per session for messages: pid, user, application, state, query start, query. */
export function describeSession(s: CancelledSession): string {
  const ended = s.how === 'terminate' || s.state === 'active';
  return (
    `session ${s.pid} (user ${s.user}, application ${JSON.stringify(s.application)}, ${s.state}, query started ${s.queryStart ?? 'never'}: ` +
    `${JSON.stringify(s.query)}) ${s.signalled ? (s.how === 'terminate' ? 'terminated' : 'cancelled') : `not ${s.how === 'terminate' ? 'terminated' : 'cancelled'} (not allowed to signal it)`}` +
    (s.signalled && !ended ? ': it is idle in its transaction, which a cancel does not end ("terminate": true would)' : '')
  );
}

export interface Canceller {
  /** For lockedTx: set only when the setting is on. */
  onBlocked?: LockOpts['onBlocked'];
  cancelled: CancelledSession[];
}

/** The canceller of one cutover attempt; `firstTriedAt` (epoch ms) is when the cutover's first attempt was scheduled. */
export function blockerCanceller(spec: CutoverSpec | undefined, firstTriedAt: number): Canceller {
  const cancelled: CancelledSession[] = [];
  if (!spec?.cancelBlockersAfter) return { cancelled };
  const afterMs = durationMs(spec.cancelBlockersAfter);
  const how = spec.terminate ? 'terminate' : 'cancel';
  const onBlocked = async (pool: pg.Pool, pid: number) => {
    if (Date.now() - firstTriedAt < afterMs) return;
    const rows = (await pool.query(sqlFile('catalog/cancel_blockers'), [pid, spec.protectRoles, spec.terminate])).rows;
    for (const r of rows) {
      const s: CancelledSession = {
        pid: r.pid,
        user: r.usename,
        application: r.application_name,
        state: r.state,
        queryStart: r.query_start ? new Date(r.query_start).toISOString() : null,
        query: r.query,
        how,
        signalled: r.signalled,
      };
      cancelled.push(s);
      Context.current().log.warn(`cutover.cancelBlockersAfter ${spec.cancelBlockersAfter} passed: ${describeSession(s)}`);
      Context.current().heartbeat({ cancelledSessions: cancelled });
    }
  };
  return { onBlocked, cancelled };
}

/**
 * The sessions this attempt signalled, appended to the run's audit row CUTOVER-CANCELLED (created
 * only when there is one); returns every session the cutover signalled in this run, earlier
 * attempts' too, for the result that goes into the history.
 */
export async function auditCancelled(pool: pg.Pool, tp: TablePlan, cancelled: CancelledSession[]): Promise<CancelledSession[]> {
  return withClient(pool, async (c) => {
    if (!cancelled.length) return ((await auditRow(c, tp.schema, tp.table, 'CUTOVER-CANCELLED'))?.details?.sessions ?? []) as CancelledSession[];
    const r = await c.query(sqlFile('bookkeeping/audit_cancelled'), [workflowId(), runId(), tp.schema, tp.table, JSON.stringify(cancelled)]);
    return r.rows[0].sessions as CancelledSession[];
  });
}
