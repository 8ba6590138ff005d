// Names shared by client, worker and workflows, which other tools rely on (README, "The operator's view"): task
// queue, signals, updates, queries, search attributes. Their payload and status types are in
// status.ts (the rehearsal's in rehearsal.ts). No I/O: workflows import this module.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { CopyProgress } from './types';
import type { Retune } from './input';
import type { RehearsalStatus } from './rehearsal-report';
import type { FleetChildPhase, FleetRequest, FleetSkipRequest, FleetStatus } from './rollout';
import type { SplitStatus } from './splitplan';
import type {
  ApprovalState,
  ApproveSignal,
  Controls,
  CutoverNowRequest,
  CutoverWindowState,
  RetuneCutoverRequest,
  PauseRequest,
  RejectSignal,
  ResumeRequest,
  SignoffSignal,
  StreamControls,
  SwitchoverStatus,
} from './status';

export const DEFAULT_TASK_QUEUE = 'partition-switchover';

export const approveSignal = defineSignal<[ApproveSignal]>('approve');
export const rejectSignal = defineSignal<[RejectSignal]>('reject');
export const progressSignal = defineSignal<[CopyProgress]>('progress');
export const signoffSignal = defineSignal<[SignoffSignal]>('signoff');
/** Every workflow type's `status`: a rehearsal's also carries `rehearsal` (RehearsalStatus). */
export const statusQuery = defineQuery<SwitchoverStatus | RehearsalStatus>('status');
/** The same `status` query, typed as splitHistory answers it (a union with the switchover's would loosen every caller's type). */
export const splitStatusQuery = defineQuery<SplitStatus>('status');

// Updates: the operator gets an answer, and a refused request (validator) leaves no event.
// approve and reject share their names with the signals (separate handler tables).
export const approveUpdate = defineUpdate<ApprovalState, [ApproveSignal]>('approve');
export const rejectUpdate = defineUpdate<ApprovalState, [RejectSignal]>('reject');
export const pauseUpdate = defineUpdate<Controls, [PauseRequest]>('pause');
export const resumeUpdate = defineUpdate<Controls, [ResumeRequest]>('resume');
export const retuneUpdate = defineUpdate<Controls, [Retune]>('retune');
export const cutoverNowUpdate = defineUpdate<CutoverWindowState, [CutoverNowRequest]>('cutoverNow');
export const retuneCutoverUpdate = defineUpdate<CutoverWindowState, [RetuneCutoverRequest]>('retuneCutover');
/** Internal: the copy activity's view of the live settings, for (table, stream). */
export const controlsQuery = defineQuery<StreamControls, [string, number]>('controls');

// The fleet (workflows/fleet.ts): approve and reject as the switchover's (its gate's state back),
// resume, skip and abort as Updates and signals; its children report each phase to it.
export const fleetApproveUpdate = defineUpdate<FleetStatus['gate'], [ApproveSignal]>('approve');
export const fleetRejectUpdate = defineUpdate<FleetStatus['gate'], [RejectSignal]>('reject');
export const fleetResumeUpdate = defineUpdate<FleetStatus, [FleetRequest]>('resume');
export const fleetSkipUpdate = defineUpdate<FleetStatus, [FleetSkipRequest]>('skip');
export const fleetAbortUpdate = defineUpdate<FleetStatus, [FleetRequest]>('abort');
export const fleetResumeSignal = defineSignal<[FleetRequest]>('resume');
export const fleetSkipSignal = defineSignal<[FleetSkipRequest]>('skip');
export const fleetAbortSignal = defineSignal<[FleetRequest]>('abort');
/** Internal: a fleet's child switchover reports each phase it enters. */
export const fleetChildSignal = defineSignal<[FleetChildPhase]>('fleetChild');
/** The fleet's `status` (same query name as every workflow type's). */
export const fleetStatusQuery = defineQuery<FleetStatus>('status');

/** Handler descriptions, shown by `temporal workflow metadata` and the UI. */
export const DESCRIPTIONS = {
  approve: 'Approve the cutover after reading the verification report: {"by": "alice", "comment": "..."}',
  reject: 'Reject the cutover; the switchover rolls back: {"by": "bob", "reason": "..."}',
  progress: 'Internal: copy progress sent by the copy activities (rows copied, keyset position).',
  signoff: 'Sign off a rehearsal after reading its report: {"by": "...", "comment": "..."}',
  status: 'Phase, per-table progress, stage counts and checksums, verification, approval state, dry-run plan.',
  approveUpdate:
    'Approve the cutover and get the approval back; refused at once (no event) when not waiting for approval or not an approver: {"by": "alice", "comment": "..."}',
  cutoverNow:
    'Cut over now, whatever the cutover window says; approvers only, refused at once unless the approved switchover waits for its window: {"by": "alice", "comment": "..."}',
  retuneCutover:
    'Change the cutover window or notBefore while the cutover waits (null clears one): {"by": "alice", "window": {"start": "02:00", "end": "04:00", "timeZone": "Europe/Berlin"}, "notBefore": null}',
  rejectUpdate:
    'Reject: the running stage is cancelled and the switchover rolls back; refused at once once cutover began or when not an approver: {"by": "bob", "reason": "..."}',
  pause: 'Pause before cutover: no copy batch and no next stage starts until resume: {"by": "alice", "reason": "peak traffic"}',
  resume: 'Resume a paused switchover: {"by": "alice"}',
  retune:
    'Change the copy settings of a running switchover (next batch on): {"by": "alice", "batchSize": 5000, "parallelism": 2, "pauseMs": 100, "maxBatchMs": 500, "maxLockWaitMs": null, "maxReplicationLagMs": 2000, "brakePauseMs": 500, "adaptive": false} (each optional; null clears a bound)',
  fleetApprove:
    'Approve what the fleet waits for (a wave, the canary, or everything after the canary, by approval.scope); refused when nothing waits or not an approver: {"by": "alice", "comment": "..."}',
  fleetReject: 'Reject what the fleet waits for: those databases roll back and no further database starts: {"by": "bob", "reason": "..."}',
  fleetResume: 'Carry on after a halt: the failed databases start again (after the cause is fixed): {"by": "alice"}',
  fleetSkip: 'Leave a failed (or not yet started) database out and carry on: {"database": "tenant_7", "by": "alice"}',
  fleetAbort: 'Stop the fleet and roll back every database it switched over, newest first: {"by": "alice", "reason": "..."}',
  fleetChild: "Internal: a child switchover's phase, sent by the child.",
  controls: 'Internal: the live settings a copy stream reads before its batches (args: table, stream).',
} as const;

export const SwitchoverPhase = defineSearchAttributeKey('SwitchoverPhase', 'KEYWORD');
export const SwitchoverTables = defineSearchAttributeKey('SwitchoverTables', 'KEYWORD_LIST');
/** On every child of a fleet: `temporal workflow list --query 'SwitchoverFleet="<fleet id>"'`. */
export const SwitchoverFleet = defineSearchAttributeKey('SwitchoverFleet', 'KEYWORD');
export const SEARCH_ATTRIBUTES = [
  { name: 'SwitchoverPhase', type: 'Keyword' },
  { name: 'SwitchoverTables', type: 'KeywordList' },
  { name: 'SwitchoverFleet', type: 'Keyword' },
] as const;
