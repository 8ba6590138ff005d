// A fleet run's state and the operator's hold on it: the status query, approve/reject of what the
// fleet waits for, resume/skip/abort (Updates and signals), and the phases its children report.
// Deterministic workflow code: no I/O.
import { setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type { ApproveSignal, RejectSignal } from '../src/status';
import {
  countPhases,
  PARKED,
  type FleetDatabase,
  type FleetInput,
  type FleetPhase,
  type FleetRequest,
  type FleetSkipRequest,
  type FleetStatus,
  type FleetTarget,
} from '../src/rollout';
import { renderFleetDetails } from '../src/fleet-details';
import {
  DESCRIPTIONS,
  SwitchoverPhase,
  approveSignal,
  fleetAbortSignal,
  fleetAbortUpdate,
  fleetApproveUpdate,
  fleetChildSignal,
  fleetRejectUpdate,
  fleetResumeSignal,
  fleetResumeUpdate,
  fleetSkipSignal,
  fleetSkipUpdate,
  fleetStatusQuery,
  rejectSignal,
} from '../src/shared';

/** What a fleet run carries into the next (continue-as-new) and what it started from. */
export interface FleetCarry {
  targets: FleetTarget[];
  groups: string[][];
  group: number;
  databases: Record<string, FleetDatabase>;
  /** Scope fleet: the one approval given after the canary. */
  fleetApproval?: { by: string; comment?: string };
  doneSeq: number;
  runs: number;
  searchAttributes: boolean;
}

/** The operator's decision at the fleet's gate. */
export interface Decision {
  decision: 'approved' | 'rejected';
  by: string;
  comment?: string;
}

export interface Fleet extends FleetCarry {
  input: FleetInput;
  id: string;
  /** The group this run started from (0 on the first run; where the last run drained on a continued one). */
  start: number;
  /** Set when this run stops starting databases at that group, to continue as new once the started ones ended. */
  drainFrom?: number;
  /** Groups whose approval gate opened (every database of it waited for approval or had ended). */
  gateOpened: Set<number>;
  state: FleetStatus;
  /** Children started and not ended. */
  running: Set<string>;
  aborting: boolean;
  rejected: boolean;
  /** Failed databases the operator said to start again (resume) or leave out (skip). */
  retry: Set<string>;
  skipped: Set<string>;
  /** The decision at the gate now waiting (state.gate), once given. */
  decision?: Decision;
  target(name: string): FleetTarget;
  db(name: string): FleetDatabase;
  setPhase(phase: FleetPhase): void;
  refresh(): void;
}

export function startFleet(input: FleetInput, carry: FleetCarry): Fleet {
  const info = workflowInfo();
  const byName = new Map(carry.targets.map((t) => [t.name, t]));
  const state: FleetStatus = {
    phase: 'starting',
    databases: carry.databases,
    counts: {},
    group: carry.group,
    groups: carry.groups.length,
    ignoredSignals: [],
  };
  const f: Fleet = {
    ...carry,
    input,
    id: info.workflowId,
    start: carry.group,
    gateOpened: new Set(),
    state,
    running: new Set(),
    aborting: false,
    rejected: false,
    retry: new Set(),
    skipped: new Set(),
    target: (name) => byName.get(name)!,
    db: (name) => state.databases[name],
    setPhase(phase) {
      state.phase = phase;
      if (f.searchAttributes) upsertSearchAttributes([{ key: SwitchoverPhase, value: phase }]);
      f.refresh();
    },
    refresh() {
      state.counts = countPhases(state.databases);
      state.group = Math.min(f.group, f.groups.length - 1);
      setCurrentDetails(renderFleetDetails(state, { workflowId: info.workflowId }));
    },
  };
  setHandler(fleetStatusQuery, () => ({ ...state, counts: countPhases(state.databases) }), { description: DESCRIPTIONS.status });
  childPhases(f);
  gateHandlers(f);
  haltHandlers(f);
  f.refresh();
  return f;
}

/** The phases the children report (fleetChild): kept until the child's result says how it ended. */
function childPhases(f: Fleet) {
  setHandler(
    fleetChildSignal,
    ({ database, phase }) => {
      const d = f.state.databases[database];
      if (!d || d.outcome || !f.running.has(database)) return;
      d.phase = phase;
      f.refresh();
    },
    { description: DESCRIPTIONS.fleetChild },
  );
}

/** Approve and reject of what the fleet waits for, as Updates (refused at once) and signals (a refusal is listed). */
function gateHandlers(f: Fleet) {
  const approvers = f.input.approval.approvers;
  const refusal = (verb: string, s: { by?: string } | undefined): string | null => {
    if (!s?.by) return `${verb} refused: give "by"`;
    if (f.input.approval.scope === 'database') {
      return `${verb} by ${s.by} refused: approval.scope is "database": ${verb} each database's switchover (workflow id ${f.id}.<database>)`;
    }
    if (f.state.gate?.state !== 'waiting' || f.decision) return `${verb} by ${s.by} refused: the fleet waits for no approval now (phase ${f.state.phase})`;
    if (approvers.length && !approvers.includes(s.by)) return `${verb} by ${s.by} refused: not in approval.approvers (${approvers.join(', ')})`;
    return null;
  };
  const decide = (decision: Decision['decision']) => (s: ApproveSignal | RejectSignal) => {
    f.decision = { decision, by: s.by, comment: 'comment' in s ? s.comment : (s as RejectSignal).reason };
    f.state.gate = { ...f.state.gate!, state: decision, by: s.by, at: new Date().toISOString() };
    if (decision === 'rejected') f.rejected = true;
    f.refresh();
    return f.state.gate;
  };
  const check = (verb: string) => (s: { by?: string }) => {
    const r = refusal(verb, s);
    if (r) throw new Error(r);
  };
  setHandler(fleetApproveUpdate, decide('approved'), { validator: check('approve'), description: DESCRIPTIONS.fleetApprove });
  setHandler(fleetRejectUpdate, decide('rejected'), { validator: check('reject'), description: DESCRIPTIONS.fleetReject });
  const signal = (verb: string, accept: (s: ApproveSignal & RejectSignal) => unknown) => (s: ApproveSignal & RejectSignal) => {
    const r = refusal(verb, s);
    if (r) return void f.state.ignoredSignals.push(r);
    accept(s);
  };
  setHandler(approveSignal, signal('approve', decide('approved')), { description: DESCRIPTIONS.fleetApprove });
  setHandler(rejectSignal, signal('reject', decide('rejected')), { description: DESCRIPTIONS.fleetReject });
}

/** One of resume, skip, abort: an Update (refused at once, no event) and a signal (a refusal is listed). */
function request<T extends FleetRequest>(
  f: Fleet,
  verb: 'resume' | 'skip' | 'abort',
  refusal: (r: T) => string | null,
  apply: (r: T) => void,
  defs: { update: UpdateDefinition<FleetStatus, [T]>; signal: SignalDefinition<[T]>; description: string },
) {
  const why = (r: T | undefined) => refusal(r ?? ({} as T));
  const run = (r: T) => (apply(r), f.refresh(), f.state);
  const validator = (r: T) => {
    const w = why(r);
    if (w) throw new Error(`${verb} refused: ${w}`);
  };
  setHandler(defs.update, run, { validator, description: defs.description });
  setHandler(
    defs.signal,
    (r) => {
      const w = why(r);
      if (w) return void f.state.ignoredSignals.push(`${verb} refused: ${w}`);
      run(r);
    },
    { description: defs.description },
  );
}

/** Resume (the failed databases start again), skip (one left out), abort (everything rolled back). */
function haltHandlers(f: Fleet) {
  const halted = () => f.state.halted?.databases ?? [];
  const over = () =>
    ['done', 'aborted', 'rejected', 'aborting'].includes(f.state.phase) || f.aborting ? `the fleet is ${f.aborting ? 'aborting' : f.state.phase}` : null;
  request<FleetRequest>(
    f,
    'resume',
    () => over() ?? (halted().length ? null : 'the fleet is not halted'),
    () => {
      for (const n of halted()) if (f.db(n).outcome === 'failed') f.retry.add(n);
      f.state.halted = undefined;
    },
    { update: fleetResumeUpdate, signal: fleetResumeSignal, description: DESCRIPTIONS.fleetResume },
  );
  request<FleetSkipRequest>(
    f,
    'skip',
    (r) => {
      const d = r.database ? f.state.databases[r.database] : undefined;
      if (over()) return over();
      if (!d) return `no database "${r.database}" in this fleet (give {"database": "<name>"})`;
      if (d.outcome && d.outcome !== 'failed') return `${r.database} already ended (${d.outcome})`;
      if (!d.outcome && f.running.has(r.database))
        return `${r.database} is running (phase ${d.phase}); only a failed or not yet started database can be skipped`;
      return null;
    },
    (r) => {
      f.skipped.add(r.database);
      if (!f.state.halted) return;
      f.state.halted.databases = f.state.halted.databases.filter((n) => n !== r.database);
      if (!f.state.halted.databases.length) f.state.halted = undefined;
    },
    { update: fleetSkipUpdate, signal: fleetSkipSignal, description: DESCRIPTIONS.fleetSkip },
  );
  request<FleetRequest>(
    f,
    'abort',
    () => over(),
    () => {
      f.aborting = true;
      f.state.halted = undefined;
    },
    { update: fleetAbortUpdate, signal: fleetAbortSignal, description: DESCRIPTIONS.fleetAbort },
  );
}

/** Whether a database's switchover waits for a person (holds no slot). */
export function parked(f: Fleet, name: string): boolean {
  return f.running.has(name) && PARKED.includes(f.db(name).phase);
}
