// What the workflows report and receive: the `status` query's shape (one for every workflow type),
// the phases, and the payloads of signals and updates. Types and constants only: workflows import it.
import type { CutoverWindow } from './windows';
import type { Plan, StageRecord, VerifyResult, CutoverResult, WrittenCheck } from './types';
import type { CopyMode, Throttle } from './input';

export interface ApproveSignal {
  by: string;
  comment?: string;
}
export interface RejectSignal {
  by: string;
  reason?: string;
}
export interface SignoffSignal {
  by: string;
  comment?: string;
}

export interface PauseRequest {
  by: string;
  reason: string;
}
export interface ResumeRequest {
  by: string;
}
/** The live copy settings as the operator controls them (status.throttle). */
export interface Controls {
  batchSize: number;
  pauseMs: number;
  parallelism: number;
  maxBatchMs?: number;
  maxLockWaitMs?: number;
  maxReplicationLagMs?: number;
  brakePauseMs: number;
  /** The adaptive throttle (unset in runs started before it: off). */
  adaptive?: boolean;
  paused: { by: string; reason: string; at: string } | null;
  /** The latest changes (pause, resume, retune), newest last. */
  changes: { by: string; at: string; what: string }[];
}
/** What one copy stream reads before each batch (controlsQuery). */
export interface StreamControls {
  /** Why the stream waits before its next batch: the operator's pause, or its table's parallelism. */
  paused: string | null;
  hold: string | null;
  batchSize: number;
  pauseMs: number;
  brake: Pick<Throttle, 'maxBatchMs' | 'maxLockWaitMs' | 'maxReplicationLagMs' | 'brakePauseMs' | 'adaptive'>;
  /** The table's unfinished streams below this one (absent in workflows from before it: none). */
  busyBelow?: number;
}

export const PHASES = [
  'preflight',
  'backup',
  'prepare',
  'triggers',
  'copy',
  'verify',
  'awaiting_approval',
  // Approved, waiting for the cutover window (input cutover.window / notBefore).
  'awaiting_window',
  'cutover',
  'cleanup',
  'done',
  'rolling_back',
  'rolled_back',
  'failed',
  // The rehearsal's phases (workflows/rehearsal/; `prepare` above is shared).
  'environment',
  'trigger_behaviour',
  'dry_run',
  'switchover',
  'application_testing',
  'performance',
  'load',
  'rollback_test',
  'signoff',
  'awaiting_signoff',
] as const;
export type Phase = (typeof PHASES)[number];

export interface TableProgress {
  table: string;
  rowsCopied: number;
  rowsEstimated: number;
  rowsPerSec: number;
  etaSeconds: number | null;
  /** Throttle brake: pauses so far, and the reason while braking (null when not braking). */
  brakes?: number;
  brake?: string | null;
}

export type ApprovalState =
  | { state: 'not_required' }
  | { state: 'waiting'; since: string; approvers: string[] }
  | { state: 'approved'; by: string; comment?: string; at: string }
  | { state: 'rejected'; by: string; reason?: string; at: string }
  | { state: 'timed_out'; at: string };

export interface SwitchoverStatus {
  phase: Phase;
  tables: string[];
  dryRun: boolean;
  progress: Record<string, TableProgress>;
  stages: StageRecord[];
  plan?: Plan;
  verification?: VerifyResult;
  approval: ApprovalState;
  ignoredSignals: string[];
  cutover: Record<string, CutoverResult>;
  /**
   * Per table, the statistics (ANALYZE) of the partitioned table, gathered while approval waits:
   * `gathering`, `done`, `skipped: <why>` or `failed: <error>`. The cutover waits for them.
   */
  statistics?: Record<string, string>;
  /** While approval waits: the last comparison of the rows written since verification, per table, and the change log's size then. */
  written?: Record<string, WrittenCheck>;
  /** The copy's live settings (as configured, then retuned), its mode, and the operator's pause. */
  throttle?: Controls & { copyMode: CopyMode };
  rollback?: { workflowId: string; state: 'running' | 'completed' | 'failed'; message?: string };
  error?: string;
  /**
   * Attach strategy, until cutover: per table the cutoff, the instant the application's writes
   * reach it (cutoff minus how far ahead it writes) and the time left, as of the query. Once it
   * is under an hour the cutover refuses and the switchover rolls back.
   */
  cutoffs?: Record<string, { cutoff: string; deadline: string; leftSeconds: number; left: string }>;
  /** The cutover window (input cutover.window / notBefore, or retuned), once approved. */
  cutoverWindow?: CutoverWindowState;
}

/** Where the cutover stands against its window; times in UTC and in the window's time zone. */
export interface CutoverWindowState {
  state: 'waiting' | 'open' | 'overridden';
  opensAt: string;
  opensLocal: string;
  closesAt: string | null;
  closesLocal: string | null;
  window: CutoverWindow | null;
  notBefore: string | null;
  /** Windows that closed before the cutover got its lock. */
  missed: number;
  /** Who retuned the window or cut over now, and when. */
  changes: { by: string; at: string; what: string }[];
}

/** The `cutoverNow` Update: an approver cuts over at once, whatever the window says. */
export interface CutoverNowRequest {
  by: string;
  comment?: string;
}

/** The `retuneCutover` Update: a new window and/or notBefore (null clears it), while the cutover waits. */
export interface RetuneCutoverRequest {
  by: string;
  window?: CutoverWindow | null;
  notBefore?: string | null;
}

/** A status with nothing done yet and no approval to wait for (rollback, rehearsal). */
export function initialStatus(phase: Phase, tables: string[]): SwitchoverStatus {
  return { phase, tables, dryRun: false, progress: {}, stages: [], approval: { state: 'not_required' }, ignoredSignals: [], cutover: {} };
}
