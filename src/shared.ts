// Names shared by client, worker and workflows (the interface contract of design.md).
// No I/O: workflows import this module.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { Plan, StageRecord, VerifyResult, CutoverResult, CopyProgress } from './types';
import type { Throttle } from './input';

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

/** Handler descriptions, shown by `temporal workflow metadata` and the UI. */
export const DESCRIPTIONS = {
  approve: 'Approve the cutover after reading the verification report: {"by": "alice", "comment": "..."}',
  reject: 'Reject the cutover; the switchover rolls back: {"by": "bob", "reason": "..."}',
  progress: 'Internal: copy progress sent by the copy activities (rows copied, keyset position).',
  signoff: 'Sign off a rehearsal after reading its report: {"by": "...", "comment": "..."}',
  status: 'Phase, per-table progress, stage counts and checksums, verification, approval state, dry-run plan.',
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
  /** The copy's throttle and mode as configured (pause, parallelism, brake bounds). */
  throttle?: Throttle & { copyMode: 'recheck' | 'lock' };
  rollback?: { workflowId: string; state: 'running' | 'completed' | 'failed'; message?: string };
  error?: string;
}
