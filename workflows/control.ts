// A switchover run's state and the operator's hold on it: the status query, approve/reject
// (signals and Updates), pause/resume/retune, the copy streams' view of the live settings, and
// the copy progress they report. Deterministic workflow code: no I/O.
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { UpdateDefinition } from '@temporalio/common';
import { describeIssues, retuneSpec, type SwitchoverInput } from '../src/input';
import type { CutoverWindow } from '../src/windows';
import {
  DESCRIPTIONS,
  SwitchoverPhase,
  approveSignal,
  approveUpdate,
  controlsQuery,
  fleetChildSignal,
  pauseUpdate,
  progressSignal,
  rejectSignal,
  rejectUpdate,
  resumeUpdate,
  retuneUpdate,
  statusQuery,
} from '../src/shared';
import type { ApprovalState, ApproveSignal, Controls, Phase, RejectSignal, SwitchoverStatus } from '../src/status';
import { emptyTableReport, type SwitchoverReport, type TableReport } from '../src/reports';
import type { StageRecord } from '../src/types';
import { renderDetails } from '../src/details';
import { cutoffStatus } from '../src/cutoff';
import { fleetDatabaseOf } from '../src/rollout';

/** Phases in which the operator may pause, resume and retune (everything before cutover). */
const CONTROLLABLE: Phase[] = ['preflight', 'backup', 'prepare', 'triggers', 'copy', 'verify', 'awaiting_approval'];
/** Phases in which a reject comes too late. */
const PAST_REJECT: Phase[] = ['cutover', 'cleanup', 'done', 'rolling_back', 'rolled_back', 'failed'];

/**
 * What a failure must undo. `nothing`: no change of ours yet. `claim`: claimTables was started,
 * so a cancelled run may hold claims to roll back (a failed claim changed nothing). `rollback`:
 * stages ran; the rollback compensates. `leave`: stop with everything in place, on purpose
 * (approval.onTimeout "fail").
 */
export type Undo = 'nothing' | 'claim' | 'rollback' | 'leave';

/** What every run of ours has: where it works, its status (the status query), phases, search attributes and report. */
export interface Tracked {
  database: string;
  schema: string;
  names: string[];
  state: SwitchoverStatus;
  phaseMs: Record<string, number>;
  searchAttributes: boolean;
  refresh(): void;
  setPhase(phase: Phase): void;
  /** A table's report (made for every planned table once preflight returns). */
  table(name: string): TableReport;
  finish(outcome: SwitchoverReport['outcome'], extra?: Partial<SwitchoverReport>): SwitchoverReport;
}

/** A switchover's run: the tracked state plus the operator's controls and what a failure must undo. */
export interface Run extends Tracked {
  input: SwitchoverInput;
  controls: Controls;
  /** The stages from ensureState through verification: cancelled by a reject while one runs. */
  stages: CancellationScope;
  decision?: 'approved' | 'rejected';
  undo: Undo;
  /** Copy streams per table, and those finished (the parallelism holds streams until lower ones finish). */
  copyStreams: Map<string, number>;
  streamsDone: Set<string>;
  record(r: StageRecord): void;
  /** While paused, no next stage starts (a condition already true adds nothing to the history). */
  unpaused(): Promise<void>;
  /** The cutover window as set and retuned (workflows/window.ts). */
  window: WindowControl;
  /** Work that runs on while approval waits (the copy strategy's statistics): settled before cutover or rollback (workflows/behind.ts). */
  behind: { pending: Promise<void>[]; error?: unknown };
}

/** The cutover window (input cutover.window / notBefore) as the operator set it, and whether an approver said "now". */
export interface WindowControl {
  window: CutoverWindow | null;
  notBefore: string | null;
  now: boolean;
  changed: boolean;
  /** Set while the cutover runs inside a window: its activities give up when it closes. */
  deadline?: number;
}

/** A run's tracked state, with its status query; `render` draws the current details (the switchover's by default). */
export function track(
  where: { database: string; schema: string },
  state: SwitchoverStatus,
  render: (info: { workflowId: string; namespace: string }) => string = (info) => renderDetails(state, info),
): Tracked {
  const info = workflowInfo();
  const reports = new Map<string, TableReport>();
  let phaseStart = Date.now();
  const t: Tracked = {
    database: where.database,
    schema: where.schema,
    names: state.tables,
    state,
    phaseMs: {},
    searchAttributes: false,
    refresh: () => setCurrentDetails(render({ workflowId: info.workflowId, namespace: info.namespace })),
    setPhase(phase) {
      t.phaseMs[state.phase] = (t.phaseMs[state.phase] ?? 0) + (Date.now() - phaseStart);
      phaseStart = Date.now();
      state.phase = phase;
      if (t.searchAttributes) upsertSearchAttributes([{ key: SwitchoverPhase, value: phase }]);
      t.refresh();
      reportToFleet(phase);
    },
    table(name) {
      let r = reports.get(name);
      if (!r) reports.set(name, (r = emptyTableReport(name)));
      return r;
    },
    finish: (outcome, extra = {}) => ({
      workflowId: info.workflowId,
      outcome,
      database: where.database,
      schema: where.schema,
      tables: [...reports.values()],
      approval: state.approval,
      phaseMs: t.phaseMs,
      ...extra,
    }),
  };
  setHandler(statusQuery, () => withCutoffs(state), { description: DESCRIPTIONS.status });
  return t;
}

/** A fleet's child switchover (id `<fleet id>.<database>`) tells its fleet each phase it enters; anything else tells nobody. */
function reportToFleet(phase: Phase): void {
  const info = workflowInfo();
  const database = info.workflowType === 'switchover' ? fleetDatabaseOf(info.workflowId, info.parent?.workflowId) : null;
  if (!database || !info.parent) return;
  // A fleet that has ended no longer listens; the child goes on regardless.
  getExternalWorkflowHandle(info.parent.workflowId)
    .signal(fleetChildSignal, { database, phase })
    .catch(() => undefined);
}

/** The status with the attach cutoffs' time left (until cutover), computed when queried; no state changes. */
function withCutoffs(state: SwitchoverStatus): SwitchoverStatus {
  const open = ['done', 'rolled_back', 'failed', 'cleanup'].includes(state.phase) ? [] : (state.plan?.tables ?? []).filter((tp) => !state.cutover[tp.table]);
  const now = Date.now();
  const cutoffs = open.flatMap((tp) => (tp.attach ? [[tp.table, cutoffStatus(tp.attach, now)]] : []));
  return cutoffs.length ? { ...state, cutoffs: Object.fromEntries(cutoffs) } : state;
}

/** A switchover's run, with every handler installed. */
export function startRun(input: SwitchoverInput): Run {
  const run = newRun(input, track(input, switchoverStatus(input)));
  decisionHandlers(run);
  controlHandlers(run);
  progressHandler(run);
  return run;
}

/**
 * A run of the switchover's stages over `tracked` (its state and status), without the operator's
 * handlers: the switchover's own (startRun), or the rehearsal's phases, which run the same stages
 * under their own phases and status.
 */
export function newRun(input: SwitchoverInput, tracked: Tracked): Run {
  const { state } = tracked;
  state.throttle ??= { ...input.throttle, copyMode: input.copyMode, batchSize: input.batchSize, paused: null, changes: [] };
  const run: Run = Object.assign(tracked, {
    input,
    controls: state.throttle,
    stages: new CancellationScope(),
    undo: 'nothing' as Undo,
    copyStreams: new Map<string, number>(),
    streamsDone: new Set<string>(),
    record(r: StageRecord) {
      state.stages.push(r);
      run.table(r.table).stages.push(r);
    },
    unpaused: () => condition(() => !run.controls.paused),
    window: { window: input.cutover?.window ?? null, notBefore: input.cutover?.notBefore ?? null, now: false, changed: false },
    behind: { pending: [] },
  });
  return run;
}

function switchoverStatus(input: SwitchoverInput): SwitchoverStatus {
  const names = input.tables.map((t) => t.table);
  return {
    phase: 'preflight',
    tables: names,
    dryRun: input.dryRun,
    progress: {},
    stages: [],
    approval: input.approval.required ? { state: 'waiting', since: '', approvers: input.approval.approvers } : { state: 'not_required' },
    ignoredSignals: [],
    cutover: {},
    throttle: { ...input.throttle, copyMode: input.copyMode, batchSize: input.batchSize, paused: null, changes: [] },
  };
}

/** Approve and reject, as signals (a refused one is listed in status.ignoredSignals) and as Updates (refused at once). */
function decisionHandlers(run: Run) {
  const { state, input } = run;
  const approvers = input.approval.approvers;
  /** Why an approval cannot be accepted now, or null. */
  const approveRefusal = (s: ApproveSignal | undefined): string | null => {
    if (state.approval.state !== 'waiting' || run.decision) return `approve by ${s?.by}: not waiting for approval`;
    if (!s?.by) return 'approve without "by": ignored';
    if (approvers.length && !approvers.includes(s.by)) return `approve by ${s.by}: not in approval.approvers (${approvers.join(', ')})`;
    return null;
  };
  const approve = (s: ApproveSignal) => {
    run.decision = 'approved';
    state.approval = { state: 'approved', by: s.by, comment: s.comment, at: new Date().toISOString() };
    run.refresh();
  };
  /** Why a reject cannot be accepted now, or null. A reject is honoured until cutover begins. */
  const rejectRefusal = (s: RejectSignal | undefined): string | null => {
    // Approved but waiting for the cutover window: still before the point of no return.
    const settled = run.decision && !(run.decision === 'approved' && state.phase === 'awaiting_window');
    if (settled || PAST_REJECT.includes(state.phase)) {
      return `reject by ${s?.by}: ${run.decision ? `already ${run.decision}` : `too late, phase ${state.phase}`}`;
    }
    if (!s?.by) return 'reject without "by": ignored';
    if (approvers.length && !approvers.includes(s.by)) return `reject by ${s.by}: not in approval.approvers`;
    return null;
  };
  const reject = (s: RejectSignal) => {
    run.decision = 'rejected';
    state.approval = { state: 'rejected', by: s.by, reason: s.reason, at: new Date().toISOString() };
    // A running stage stops at once (its activity sees the cancellation at its next heartbeat),
    // then the rollback runs. At the approval point nothing runs: the wait sees the decision.
    if (state.phase !== 'awaiting_approval' && state.phase !== 'awaiting_window') run.stages.cancel();
    run.refresh();
  };
  /** A signal's refusal is listed; an Update's is thrown by its validator, reworded as refused. */
  const signal =
    <T>(refusal: (s: T | undefined) => string | null, accept: (s: T) => void) =>
    (s: T) => {
      const refused = refusal(s);
      if (refused) return void state.ignoredSignals.push(refused);
      accept(s);
    };
  const refuse = (refused: string | null, verb: string) => {
    if (refused) throw new Error(refused.replace(new RegExp(`^${verb} by (.*?): `), `${verb} by $1 refused: `));
  };
  setHandler(approveSignal, signal(approveRefusal, approve), { description: DESCRIPTIONS.approve });
  setHandler(rejectSignal, signal(rejectRefusal, reject), { description: DESCRIPTIONS.reject });
  // The same decisions as Updates: a refused one answers at once and leaves no event in the history.
  const decisionUpdate = <T extends { by: string }>(
    def: UpdateDefinition<ApprovalState, [T]>,
    description: string,
    validator: (s: T) => void,
    accept: (s: T) => void,
  ) => setHandler(def, (s) => (accept(s), state.approval), { description, validator });
  decisionUpdate(
    approveUpdate,
    DESCRIPTIONS.approveUpdate,
    (s) => {
      if (!s?.by) throw new Error('approve refused: give "by" (who approves)');
      if (state.phase !== 'awaiting_approval' || state.approval.state !== 'waiting' || run.decision) {
        throw new Error(`approve by ${s.by} refused: not waiting for approval (phase ${state.phase}${run.decision ? `, already ${run.decision}` : ''})`);
      }
      refuse(approveRefusal(s), 'approve');
    },
    approve,
  );
  decisionUpdate(
    rejectUpdate,
    DESCRIPTIONS.rejectUpdate,
    (s) => {
      if (!s?.by) throw new Error('reject refused: give "by" (who rejects)');
      refuse(rejectRefusal(s), 'reject');
    },
    reject,
  );
}

/** Pause, resume, retune: the copy reads the live settings before each batch (controlsQuery); the workflow starts no next stage while paused. */
function controlHandlers(run: Run) {
  const { controls, state } = run;
  const change = (by: string, what: string) => {
    controls.changes.push({ by, at: new Date().toISOString(), what });
    if (controls.changes.length > 20) controls.changes.shift();
    run.refresh();
  };
  const notBeforeCutover = (what: string) => {
    if (!CONTROLLABLE.includes(state.phase))
      throw new Error(`${what} refused: the switchover is in phase ${state.phase}; settings can change only before cutover`);
  };
  /** An Update of the controls that answers with them; `validate` throws the refusal. */
  const update = <A>(def: UpdateDefinition<Controls, [A]>, description: string, validate: (a: A) => void, apply: (a: A) => void) =>
    setHandler(def, (a) => (apply(a), controls), { description, validator: validate });
  update(
    pauseUpdate,
    DESCRIPTIONS.pause,
    (p) => {
      if (!p?.by || !p.reason) throw new Error('pause refused: give "by" (who pauses) and "reason"');
      notBeforeCutover('pause');
      if (controls.paused) throw new Error(`pause refused: already paused by ${controls.paused.by} (${controls.paused.reason})`);
    },
    (p) => {
      controls.paused = { by: p.by, reason: p.reason, at: new Date().toISOString() };
      change(p.by, `paused: ${p.reason}`);
    },
  );
  update(
    resumeUpdate,
    DESCRIPTIONS.resume,
    (r) => {
      if (!r?.by) throw new Error('resume refused: give "by" (who resumes)');
      if (!controls.paused) throw new Error('resume refused: not paused');
    },
    (r) => {
      const was = controls.paused;
      controls.paused = null;
      change(r.by, `resumed (paused by ${was?.by}: ${was?.reason})`);
    },
  );
  update(
    retuneUpdate,
    DESCRIPTIONS.retune,
    (raw) => {
      const r = retuneSpec.safeParse(raw ?? {});
      if (!r.success) throw new Error(`retune refused: ${describeIssues(r.error)}`);
      notBeforeCutover('retune');
    },
    (raw) => {
      const r = retuneSpec.parse(raw);
      const what: string[] = [];
      for (const k of ['batchSize', 'parallelism', 'pauseMs', 'maxBatchMs', 'maxLockWaitMs', 'maxReplicationLagMs', 'brakePauseMs', 'adaptive'] as const) {
        if (r[k] === undefined) continue;
        const next = r[k] ?? undefined;
        if (next === controls[k]) continue;
        what.push(`${k} ${controls[k] ?? 'off'} → ${next ?? 'off'}`);
        Object.assign(controls, { [k]: next });
      }
      change(r.by, what.length ? what.join(', ') : 'no change');
    },
  );
  controlsHandler(run);
}

/** The live settings as each copy stream reads them before its next batch, with the hold of a lower parallelism. */
function controlsHandler(run: Run) {
  const { controls } = run;
  setHandler(
    controlsQuery,
    (table, stream) => {
      // A lower parallelism holds a table's higher streams: a stream copies once fewer than
      // `parallelism` streams below it are unfinished (its key range is fixed when it starts).
      const busy: number[] = [];
      for (let i = 0; i < stream; i++) if (!run.streamsDone.has(`${table}/${i}`)) busy.push(i + 1);
      return {
        paused: controls.paused ? `paused by ${controls.paused.by}: ${controls.paused.reason}` : null,
        hold:
          busy.length >= controls.parallelism
            ? `held: parallelism ${controls.parallelism}, stream${busy.length > 1 ? 's' : ''} ${busy.join(', ')} of ${run.copyStreams.get(table) ?? '?'} still copying`
            : null,
        batchSize: controls.batchSize,
        pauseMs: controls.pauseMs,
        brake: brakeOf(controls),
        busyBelow: busy.length,
      };
    },
    { description: DESCRIPTIONS.controls },
  );
}

/** The brake's bounds as the copy reads them. */
export function brakeOf(c: Controls) {
  return {
    maxBatchMs: c.maxBatchMs,
    maxLockWaitMs: c.maxLockWaitMs,
    maxReplicationLagMs: c.maxReplicationLagMs,
    brakePauseMs: c.brakePauseMs,
    adaptive: c.adaptive ?? false,
  };
}

/** Copy progress per stream, summed per table into status.progress. */
function progressHandler(run: Run) {
  const streamProgress = new Map<string, { rows: number; rate: number; brakes: number; brake: string | null }>();
  setHandler(
    progressSignal,
    (p) => {
      const progress = run.state.progress[p.table];
      if (!progress) return;
      streamProgress.set(`${p.table}/${p.stream}`, { rows: p.rowsCopied, rate: p.done ? 0 : p.rowsPerSec, brakes: p.brakes ?? 0, brake: p.brake ?? null });
      if (p.done) run.streamsDone.add(`${p.table}/${p.stream}`);
      let rows = 0;
      let rate = 0;
      progress.brakes = 0;
      progress.brake = null;
      for (const [k, v] of streamProgress) {
        if (!k.startsWith(`${p.table}/`)) continue;
        rows += v.rows;
        rate += v.rate;
        progress.brakes += v.brakes;
        progress.brake ??= v.brake;
      }
      progress.rowsCopied = rows;
      progress.rowsPerSec = rate;
      progress.etaSeconds = rate > 0 ? Math.max(0, (progress.rowsEstimated - rows) / rate) : null;
      run.refresh();
    },
    { description: DESCRIPTIONS.progress },
  );
}
