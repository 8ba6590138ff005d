// The fleet: one switchover per database as a child `switchover` workflow (id `<fleet id>.<database>`),
// the canary first (then an optional soak and its check), then waves; at most `concurrency`
// switchovers working at once, `perServer` per PostgreSQL server. Approval per database, per wave
// or once for the fleet; a failure halts (resume, skip, abort) or is passed over; abort rolls back
// every database switched over, newest first, as child rollback workflows. Continue-as-new
// between waves keeps each run's history bounded. Deterministic workflow code: no I/O.
import {
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { childId, fleetInput, mayStart, rolloutGroups, type FleetInput, type FleetReport, type FleetTarget } from '../src/rollout';
import type { SwitchoverReport } from '../src/reports';
import type { SwitchoverInputRaw } from '../src/input';
import { SwitchoverFleet, approveSignal, fleetStatusQuery, rejectSignal } from '../src/shared';
import { startFleet, parked, type Fleet, type FleetCarry } from './fleet-control';
import { LONG, opts } from './options';
import { acts } from './stages';
import { durationMs, errorMessage, ownFailure, parseInput } from './util';

export type { FleetReport } from '../src/rollout';

export async function fleet(raw: unknown, carried?: FleetCarry): Promise<FleetReport> {
  const input = parseInput(fleetInput, raw, 'fleet', 'Nothing was started; fix the input and start again.');
  const f = startFleet(input, carried ?? (await firstRun(input)));
  const stopped = () => f.aborting || f.rejected;
  if (f.group === 0) {
    f.setPhase('canary');
    await rollOut(f, [0]);
    await afterCanary(f);
  }
  const rest = f.groups.map((_, g) => g).filter((g) => g >= Math.max(1, f.start));
  if (rest.length && !stopped()) {
    f.setPhase('rolling_out');
    await rollOut(f, rest);
    if (f.drainFrom !== undefined && !stopped()) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof fleet>(raw, { ...carry(f), group: f.drainFrom, runs: f.runs + 1 });
    }
  }
  if (f.aborting) await abortAll(f);
  for (const n of Object.keys(f.state.databases)) if (!f.db(n).outcome) f.db(n).outcome = 'not_started';
  const outcome = f.aborting ? 'aborted' : f.rejected ? 'rejected' : input.dryRun ? 'dry_run' : 'done';
  f.setPhase(outcome === 'dry_run' ? 'done' : outcome);
  await condition(allHandlersFinished);
  return { workflowId: f.id, outcome, databases: f.state.databases, counts: f.state.counts, runs: f.runs };
}

/** The targets, listed once (recorded in the history, so a replay sees the same list), and the groups. */
async function firstRun(input: FleetInput): Promise<FleetCarry> {
  setHandler(fleetStatusQuery, () => ({ phase: 'starting', databases: {}, counts: {}, group: 0, groups: 0, ignoredSignals: [] }));
  const targets: FleetTarget[] = await acts.fleetTargets
    .executeWithOptions(opts('fleet: list the databases and their servers'), [input.targets])
    .catch((err) => {
      throw ownFailure(err);
    });
  const { searchAttributes } = await acts.capabilities.executeWithOptions(opts('fleet: worker capabilities (search attributes)'), []);
  const groups = rolloutGroups(
    targets.map((t) => t.name),
    input.rollout,
  );
  const databases = Object.fromEntries(targets.map((t) => [t.name, { phase: 'pending' as const }]));
  return { targets, groups, group: 0, databases, doneSeq: 0, runs: 1, searchAttributes };
}

function carry(f: Fleet): FleetCarry {
  const { targets, groups, group, databases, fleetApproval, doneSeq, runs, searchAttributes } = f;
  return { targets, groups, group, databases, fleetApproval, doneSeq, runs, searchAttributes };
}

/**
 * The groups in order, pipelined: a database starts once every database before it has started
 * and a slot is free (a wave need not end before the next starts; under scope wave, a wave starts
 * once the one before it all waits at its gate). The groups' approval gates and abort's rejects
 * run beside them.
 */
async function rollOut(f: Fleet, groups: number[]) {
  const order = groups.flatMap((g) => f.groups[g].map((name) => ({ name, g })));
  let settled = false;
  const all = Promise.all(order.filter((x) => !f.db(x.name).outcome).map((x) => runDatabase(f, x.name, x.g, order))).finally(() => (settled = true));
  await Promise.all([all, gates(f, groups, () => settled), rejectOnAbort(f, () => settled)]);
}

/** The child switchover's input: the fleet's settings for its database; approval asked of the child always (the fleet may give it). */
function childInput(f: Fleet, t: FleetTarget): SwitchoverInputRaw {
  const { targets: _t, rollout: _r, onFailure: _o, approval, ...settings } = f.input;
  const { scope: _s, ...childApproval } = approval;
  return { ...settings, database: t.database, approval: childApproval };
}

/**
 * Whether `name` (group `g`, at its place in `order`) is next: every database before it started,
 * and under scope wave the wave before it waits at (or passed) its gate. The first database of a
 * group that would start past the history limit drains the run instead (continue-as-new once
 * every started one ended): `f.drainFrom`.
 */
function next(f: Fleet, name: string, g: number, order: { name: string; g: number }[]): boolean {
  const i = order.findIndex((x) => x.name === name);
  const prev = order[i - 1];
  if (prev && f.db(prev.name).phase === 'pending' && !f.db(prev.name).outcome) return false;
  const { approval, dryRun, rollout } = f.input;
  if (approval.required && !dryRun && approval.scope === 'wave' && g - 1 >= Math.max(1, f.start) && !f.gateOpened.has(g - 1)) return false;
  if ((!prev || prev.g !== g) && g > Math.max(1, f.start) && workflowInfo().historyLength > rollout.historyLimit) f.drainFrom ??= g;
  return true;
}

/** Waits for its turn and a slot, runs the database's switchover; on failure halts (or not) and waits for resume, skip or abort. */
async function runDatabase(f: Fleet, name: string, g: number, order: { name: string; g: number }[]): Promise<void> {
  const t = f.target(name);
  const d = f.db(name);
  for (;;) {
    const working = () => [...f.running].filter((n) => !parked(f, n)).map((n) => f.target(n));
    const stop = () => f.aborting || f.rejected || f.skipped.has(name);
    const drained = () => f.drainFrom !== undefined && g >= f.drainFrom;
    // The slot is taken inside the condition: every waiting database is checked in one pass, and
    // one that starts must count for the next.
    await condition(
      () =>
        stop() || drained() || (!f.state.halted && next(f, name, g, order) && !drained() && mayStart(t, working(), f.input.rollout) && !!f.running.add(name)),
    );
    if (!f.running.has(name)) {
      if (drained() && !stop()) return; // the next run starts it
      d.outcome = f.skipped.has(name) ? 'skipped' : 'not_started';
      d.phase = f.skipped.has(name) ? 'skipped' : d.phase;
      return f.refresh();
    }
    f.group = Math.max(f.group, g);
    d.phase = 'preflight';
    d.outcome = undefined;
    d.error = undefined;
    f.refresh();
    try {
      const r: SwitchoverReport = await executeChild('switchover', {
        args: [childInput(f, t)],
        workflowId: childId(f.id, name),
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        ...(f.searchAttributes ? { typedSearchAttributes: [{ key: SwitchoverFleet, value: f.id }] } : {}),
      });
      ended(f, name, r);
      return;
    } catch (err) {
      d.phase = 'failed';
      d.outcome = 'failed';
      d.error = errorMessage(err);
    } finally {
      f.running.delete(name);
      f.refresh();
    }
    // The canary's failure halts whatever onFailure says: nothing after it is started.
    if (f.input.onFailure === 'continue' && g > 0) return;
    if (!(await halt(f, name))) return;
  }
}

/** How a child ended, from its report. */
function ended(f: Fleet, name: string, r: SwitchoverReport) {
  const d = f.db(name);
  d.outcome = r.outcome === 'cleaned' ? 'done' : r.outcome;
  d.phase = r.outcome === 'done' || r.outcome === 'dry_run' ? 'done' : r.rollback?.ok ? 'rolled_back' : 'failed';
  d.rows = r.tables.reduce((a, t) => a + (t.verification?.partitioned.rows ?? t.copy.rows), 0);
  const locks = r.tables.map((t) => t.cutover?.lockMs).filter((x): x is number => x !== undefined);
  if (locks.length) d.cutoverLockMs = Math.max(...locks);
  if (r.outcome === 'done' && !f.input.dryRun) d.doneOrder = ++f.doneSeq;
}

/** Halts the fleet on database `name` and waits; true when the operator said resume for it (start it again). */
async function halt(f: Fleet, name: string): Promise<boolean> {
  const already = f.state.halted?.databases ?? [];
  f.state.halted = { databases: [...new Set([...already, name])], since: f.state.halted?.since ?? new Date().toISOString() };
  f.setPhase('halted');
  await condition(() => f.aborting || f.skipped.has(name) || f.retry.has(name));
  const again = f.retry.delete(name);
  if (f.skipped.has(name)) Object.assign(f.db(name), { outcome: 'skipped' });
  if (!f.aborting) f.setPhase(f.group === 0 ? 'canary' : 'rolling_out');
  return !f.aborting && again;
}

/**
 * The approval gates of `groups` (scope wave, and the canary under scope fleet), one after the
 * other: once every database of a group waits for approval (or ended), one decision for all;
 * approved, each is told `approve` by the approver and their cutovers run together. Scope fleet
 * after the canary: approved once already, each database is approved as it arrives. Nothing is
 * approved while the fleet is halted.
 */
async function gates(f: Fleet, groups: number[], settled: () => boolean) {
  const { approval, dryRun } = f.input;
  if (!approval.required || dryRun || approval.scope === 'database') return;
  if (approval.scope === 'wave' || groups[0] === 0) {
    for (const g of groups) await waveGate(f, g, settled);
    return;
  }
  const names = groups.flatMap((g) => f.groups[g]);
  const told = new Set<string>();
  for (;;) {
    await condition(() => settled() || f.aborting || (!f.state.halted && names.some((n) => waiting(f, n) && !told.has(n))));
    if (settled() || f.aborting) return;
    const now = names.filter((n) => waiting(f, n) && !told.has(n));
    now.forEach((n) => told.add(n));
    await tell(f, now, { decision: 'approved', ...f.fleetApproval! });
  }
}

const waiting = (f: Fleet, n: string) => f.running.has(n) && f.db(n).phase === 'awaiting_approval';

/** One group's gate: opens once all of it waits for approval (or ended), then one decision for all. */
async function waveGate(f: Fleet, g: number, settled: () => boolean) {
  const names = f.groups[g];
  await condition(() => settled() || f.aborting || f.rejected || (!f.state.halted && names.every((n) => waiting(f, n) || !!f.db(n).outcome)));
  if (settled() || f.aborting || f.rejected) return;
  f.gateOpened.add(g);
  const now = names.filter((n) => waiting(f, n));
  if (!now.length) return;
  const d = await decision(f, g);
  if (d) await tell(f, now, d);
}

/** Waits for the operator's approve or reject at group `g`'s gate; null when the fleet is aborted meanwhile. */
async function decision(f: Fleet, g: number, rest = false) {
  f.decision = undefined;
  f.state.gate = { group: g, state: 'waiting', ...(rest ? { rest } : {}) };
  f.setPhase('awaiting_approval');
  await condition(() => f.aborting || !!f.decision);
  if (f.aborting) return null;
  const d = f.decision!;
  f.setPhase(g === 0 ? 'canary' : 'rolling_out');
  return d;
}

/** Tells children the operator's decision, as that operator (the children check approvers too). */
async function tell(f: Fleet, names: string[], d: { decision: 'approved' | 'rejected'; by: string; comment?: string }) {
  for (const n of names) {
    const h = getExternalWorkflowHandle(childId(f.id, n));
    const sent =
      d.decision === 'approved'
        ? h.signal(approveSignal, { by: d.by, comment: d.comment ?? `fleet ${f.id}` })
        : h.signal(rejectSignal, { by: d.by, reason: d.comment ?? `rejected at fleet ${f.id}` });
    // A child that ended meanwhile takes no signal; how it ended comes with its result.
    await sent.catch((err) => void f.state.ignoredSignals.push(`${d.decision} of ${n} not delivered: ${errorMessage(err)}`));
  }
}

/** On abort: every running child not yet at cutover is rejected (it rolls back itself). */
async function rejectOnAbort(f: Fleet, settled: () => boolean) {
  await condition(() => settled() || f.aborting);
  if (settled()) return;
  await tell(f, [...f.running], { decision: 'rejected', by: 'fleet', comment: `fleet ${f.id} aborted` });
}

/** After the canary: the soak and its check, then (scope fleet) the one approval for everything that follows. */
async function afterCanary(f: Fleet) {
  const canary = f.groups[0];
  const { rollout, approval, dryRun } = f.input;
  if (dryRun || f.aborting || f.rejected || canary.some((n) => f.db(n).outcome !== 'done')) return;
  if (durationMs(rollout.soak) > 0) {
    f.state.soak = { until: new Date(Date.now() + durationMs(rollout.soak)).toISOString() };
    f.setPhase('soak');
    await condition(() => f.aborting, durationMs(rollout.soak));
    if (f.aborting) return;
    const bad: string[] = [];
    for (const n of canary) {
      const checks = await acts.fleetSoakCheck.executeWithOptions(opts(`fleet: soak check of ${n}`, LONG), [
        f.target(n).database,
        f.input.schema,
        childId(f.id, n),
      ]);
      const failed = checks.filter((c) => !c.ok);
      if (failed.length) bad.push(`${n}: ${failed.map((c) => `${c.table} ${c.detail}`).join('; ')}`);
    }
    f.state.soak = { ok: !bad.length, detail: bad.length ? bad.join(' | ') : 'writes land and every table equals its legacy copy' };
    if (bad.length) {
      // Nothing after the canary starts until the operator resumes (accepting it) or aborts.
      f.state.halted = { databases: [...canary], since: new Date().toISOString() };
      f.setPhase('halted');
      await condition(() => f.aborting || !f.state.halted);
      if (f.aborting) return;
    }
  }
  if (approval.required && approval.scope === 'fleet' && f.groups.length > 1 && !f.aborting) {
    const d = await decision(f, 1, true);
    if (d?.decision === 'approved') f.fleetApproval = { by: d.by, comment: d.comment };
  }
}

/** Abort: every database the fleet switched over is rolled back, newest cutover first, each by a child rollback workflow. */
async function abortAll(f: Fleet) {
  f.setPhase('aborting');
  await condition(() => f.running.size === 0);
  const done = Object.entries(f.state.databases)
    .filter(([, d]) => d.outcome === 'done' && d.doneOrder !== undefined)
    .sort(([, a], [, b]) => b.doneOrder! - a.doneOrder!);
  for (const [name, d] of done) {
    const id = childId(f.id, name);
    try {
      await executeChild('rollback', {
        args: [{ switchoverWorkflowId: id, database: f.target(name).database, schema: f.input.schema }],
        workflowId: `${id}-rollback`,
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      d.outcome = 'rolled_back';
      d.phase = 'rolled_back';
    } catch (err) {
      d.error = `abort: rollback failed: ${errorMessage(err)}`;
    }
    f.refresh();
  }
}
