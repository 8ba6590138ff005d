// Names shared by client, worker and workflows (the interface contract of design.md).
// No I/O: workflows import this module.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { Plan, StageRecord, VerifyResult, CutoverResult, CopyProgress } from './types';
import type { Retune, Throttle } from './input';

export const DEFAULT_TASK_QUEUE = 'partition-switchover';

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

export const approveSignal = defineSignal<[ApproveSignal]>('approve');
export const rejectSignal = defineSignal<[RejectSignal]>('reject');
export const progressSignal = defineSignal<[CopyProgress]>('progress');
export const signoffSignal = defineSignal<[SignoffSignal]>('signoff');
export const statusQuery = defineQuery<SwitchoverStatus>('status');

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
  brake: Pick<Throttle, 'maxBatchMs' | 'maxLockWaitMs' | 'maxReplicationLagMs' | 'brakePauseMs'>;
}

// Updates: the operator gets an answer, and a refused request (validator) leaves no event.
// approve and reject share their names with the signals (separate handler tables).
export const approveUpdate = defineUpdate<ApprovalState, [ApproveSignal]>('approve');
export const rejectUpdate = defineUpdate<ApprovalState, [RejectSignal]>('reject');
export const pauseUpdate = defineUpdate<Controls, [PauseRequest]>('pause');
export const resumeUpdate = defineUpdate<Controls, [ResumeRequest]>('resume');
export const retuneUpdate = defineUpdate<Controls, [Retune]>('retune');
/** Internal: the copy activity's view of the live settings, for (table, stream). */
export const controlsQuery = defineQuery<StreamControls, [string, number]>('controls');

/** Handler descriptions, shown by `temporal workflow metadata` and the UI. */
export const DESCRIPTIONS = {
  approve: 'Approve the cutover after reading the verification report: {"by": "alice", "comment": "..."}',
  reject: 'Reject the cutover; the switchover rolls back: {"by": "bob", "reason": "..."}',
  progress: 'Internal: copy progress sent by the copy activities (rows copied, keyset position).',
  signoff: 'Sign off a rehearsal after reading its report: {"by": "...", "comment": "..."}',
  status: 'Phase, per-table progress, stage counts and checksums, verification, approval state, dry-run plan.',
  approveUpdate: 'Approve the cutover and get the approval back; refused at once (no event) when not waiting for approval or not an approver: {"by": "alice", "comment": "..."}',
  rejectUpdate:
    'Reject: the running stage is cancelled and the switchover rolls back; refused at once once cutover began or when not an approver: {"by": "bob", "reason": "..."}',
  pause: 'Pause before cutover: no copy batch and no next stage starts until resume: {"by": "alice", "reason": "peak traffic"}',
  resume: 'Resume a paused switchover: {"by": "alice"}',
  retune:
    'Change the copy settings of a running switchover (next batch on): {"by": "alice", "batchSize": 5000, "parallelism": 2, "pauseMs": 100, "maxBatchMs": 500, "maxLockWaitMs": null, "maxReplicationLagMs": 2000, "brakePauseMs": 500} (each optional; null clears a bound)',
  controls: 'Internal: the live settings a copy stream reads before its batches (args: table, stream).',
} as const;

export const PHASES = [
  'preflight',
  'backup',
  'prepare',
  'triggers',
  'copy',
  'verify',
  'awaiting_approval',
  'cutover',
  'cleanup',
  'done',
  'rolling_back',
  'rolled_back',
  'failed',
  // The rehearsal's phases (workflows/rehearsal.ts; `prepare` above is shared).
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

export const SwitchoverPhase = defineSearchAttributeKey('SwitchoverPhase', 'KEYWORD');
export const SwitchoverTables = defineSearchAttributeKey('SwitchoverTables', 'KEYWORD_LIST');
export const SEARCH_ATTRIBUTES = [
  { name: 'SwitchoverPhase', type: 'Keyword' },
  { name: 'SwitchoverTables', type: 'KeywordList' },
] as const;

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
  /** The copy's live settings (as configured, then retuned), its mode, and the operator's pause. */
  throttle?: Controls & { copyMode: 'recheck' | 'lock' };
  rollback?: { workflowId: string; state: 'running' | 'completed' | 'failed'; message?: string };
  error?: string;
}
