// Our failure types. Each is thrown as an ApplicationFailure whose message tells the operator
// what is wrong and what to do; `details` carry table, stage and sample ids for tools.
import { ApplicationFailure } from '@temporalio/common';

export const FAILURE_TYPES = {
  InvalidInput: 'The workflow input is invalid; fix the named field and start again. Nothing was changed.',
  UnsupportedSchema: 'The table cannot be migrated safely as it is; the message says why and what to change.',
  UnknownDatabase: 'The input names a database target the worker has no DATABASE_URL_<NAME> for.',
  TableBusy: 'Another switchover holds this table; wait for it, or roll it back.',
  ParityMismatch: 'Verification found rows that differ between the legacy and partitioned tables.',
  ApprovalRejected: 'An approver rejected the cutover; the switchover was rolled back.',
  ApprovalTimedOut: 'Nobody approved within approval.timeout.',
  PermissionDenied: "The worker's database role lacks a privilege the stage needs.",
  StateConflict: 'The database is not in the state this stage expects; read the message before retrying.',
  // Thrown retryable (not through fail()): the activity's retry policy backs off and tries again.
  LockTimeout:
    'A step of ours (trigger install, index or foreign key attach, cutover, rollback, cleanup) could not take its lock within its budget (lockTimeoutMs, kept below deadlock_timeout) because a long transaction holds the table; nothing changed, retried with backoff.',
  Transient: 'A database error a retry can cure (connection lost, deadlock, serialization failure); retried with backoff.',
  // The switchover's own failure after side effects began, when the cause has no type of ours.
  SwitchoverFailed: 'A stage failed after the switchover changed the database; it was rolled back (the cause says what failed).',
  RehearsalFailed: 'A rehearsal phase failed on the staging database; the message names the phase, and staging was restored.',
  RollbackIncomplete: 'The rollback could not put every table back; the message names what is plain again and what failed. Fix the cause and run it again.',
} as const;
export type FailureType = keyof typeof FAILURE_TYPES;

export function fail(type: FailureType, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : undefined });
}

/** A failure the activity's retry policy retries with backoff (LockTimeout, Transient). */
export function retryable(type: 'LockTimeout' | 'Transient', message: string, cause?: unknown, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: false, cause: cause as Error | undefined, details: details ? [details] : undefined });
}

/** A give-up of ours that is the server's lock timeout in all but origin: SQLSTATE 55P03, so it is retried like one. */
export function lockGiveUp(message: string): Error {
  return Object.assign(new Error(message), { code: '55P03' });
}

// SQLSTATEs that a retry can cure: connection loss, lock timeout, serialization, deadlock, shutdown.
const TRANSIENT = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300', '08000', '08003', '08006', '08001', '08004']);
const NODE_TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

/** Whether an error from `pg` is worth retrying (the activity's retry policy then backs off). */
export function isTransient(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  if (code && (TRANSIENT.has(code) || NODE_TRANSIENT.has(code))) return true;
  const msg = String((err as Error)?.message ?? '');
  return /Connection terminated|connection ended|terminating connection|Client has encountered a connection error/i.test(msg);
}

/** Turns a pg error into a typed failure: transient ones stay retryable, permanent ones do not. */
export function classify(err: unknown, context: { stage: string; table?: string }): unknown {
  if (err instanceof ApplicationFailure) return err;
  const e = err as { code?: string; message?: string; detail?: string; hint?: string };
  // PostgreSQL's DETAIL and HINT name what the message does not (e.g. the view a DROP refuses over).
  const more = [e.detail && `DETAIL: ${e.detail}`, e.hint && `HINT: ${e.hint}`].filter(Boolean).join(' ');
  const where = `${context.stage}${context.table ? ` of ${context.table}` : ''}`;
  if (isTransient(err)) {
    return retryable('Transient', `${where}: ${e.message} (SQLSTATE ${e.code ?? 'n/a'}); retrying with backoff`, err);
  }
  // A login or database the server refuses: retrying with the same connection string cannot help.
  if (e.code?.startsWith('28') || e.code === '3D000') {
    return fail(
      e.code === '3D000' ? 'UnknownDatabase' : 'PermissionDenied',
      `${where}: ${e.message} (SQLSTATE ${e.code}). Check the worker's connection string for this database target (DATABASE_URL or DATABASE_URL_<NAME>), then start again.`,
      { ...context, sqlstate: e.code },
    );
  }
  if (e.code === '42501') {
    return fail('PermissionDenied', `${where}: ${e.message}. Grant the worker's role the privilege, then start again.`, {
      ...context,
      sqlstate: e.code,
    });
  }
  // 2BP01: objects depend on what we would drop; a retry finds them again.
  if (e.code && /^(42|23|22|0A|2B)/.test(e.code)) {
    return fail(
      'StateConflict',
      `${where}: ${e.message}${more ? ` (${more})` : ''} (SQLSTATE ${e.code}). The database is unchanged by this failed statement.`,
      {
        ...context,
        sqlstate: e.code,
      },
    );
  }
  return err;
}
