// The rehearsal: the seed's ten-phase staging rehearsal as one workflow, on a named staging
// target. Each phase is a module of this folder built from the switchover's own stages
// (workflows/stages.ts, the strategy's list in workflows/strategies.ts) and child workflows; each
// is recorded (result, timing, checks) in `status`, in current details and as an audit row. A
// failed phase stops the rehearsal, puts staging back (plain tables, nothing of ours but audit
// rows) and fails with a report naming the phase. Otherwise it hands over a report with a
// production forecast and waits in `awaiting_signoff` for a `signoff` signal.
import { ApplicationFailure, condition, setHandler, workflowInfo } from '@temporalio/workflow';
import { describeIssues, rehearsalInput, switchoverInput } from '../../src/input';
import { fleetTargetsSpec } from '../../src/rollout';
import {
  REHEARSAL_PHASES,
  bad,
  ok,
  renderRehearsal,
  resultOf,
  type PhaseOutcome,
  type PhaseRecord,
  type RehearsalPhase,
  type RehearsalReport,
  type RehearsalStatus,
} from '../../src/rehearsal-report';
import { DESCRIPTIONS, signoffSignal } from '../../src/shared';
import { initialStatus } from '../../src/status';
import { newRun, track } from '../control';
import { announce } from '../stages';
import { STRATEGIES } from '../strategies';
import { errorMessage, ownFailure, parseInput } from '../util';
import { opts } from '../options';
import { acts, type Ctx } from './staging';
import { environment } from './environment';
import { prepare } from './partitioned-tables';
import { triggerBehaviour } from './trigger-behaviour';
import { dryRun } from './dry-run';
import { switchover } from './live-switchover';
import { applicationTesting } from './application-testing';
import { performance } from './performance';
import { load } from './load';
import { rollbackTest } from './rollback-test';
import { signoff } from './signoff';
import { restoreStaging } from './restore';

const PHASES: Record<RehearsalPhase, (ctx: Ctx) => Promise<PhaseOutcome>> = {
  environment,
  prepare,
  trigger_behaviour: triggerBehaviour,
  dry_run: dryRun,
  switchover,
  application_testing: applicationTesting,
  performance,
  load,
  rollback_test: rollbackTest,
  signoff,
};

export async function rehearsal(raw: unknown): Promise<RehearsalReport> {
  const ctx = begin(parseInput(rehearsalInput, await fleetCanary(raw), 'rehearsal', 'Nothing was changed; fix the input and start again.'));
  await announce(ctx.tracked);
  await checkTarget(ctx);
  for (const rec of ctx.state.rehearsal.phases) {
    if (!(await runPhase(ctx, rec))) return failed(ctx);
  }
  ctx.tracked.setPhase('done');
  return report(ctx, 'signed_off');
}

/**
 * With a fleet's `targets` instead of `database`: the rehearsal runs on the fleet's canary (the
 * first target; with `like`, the first by name), listed once and recorded in the history.
 */
async function fleetCanary(raw: unknown): Promise<unknown> {
  if (!raw || typeof raw !== 'object' || !('targets' in raw)) return raw;
  const { targets, ...rest } = raw as { targets: unknown };
  const parsed = fleetTargetsSpec.safeParse(targets);
  const bad = !parsed.success ? `targets: ${describeIssues(parsed.error)}` : 'database' in rest ? 'give "targets" (a fleet\'s) or "database", not both' : null;
  if (bad) throw ApplicationFailure.create({ type: 'InvalidInput', message: `invalid rehearsal input: ${bad}. Nothing was changed.`, nonRetryable: true });
  const [canary] = await acts.fleetTargets.executeWithOptions(opts("rehearsal: the fleet's canary"), [parsed.data!]).catch((err) => {
    throw ownFailure(err);
  });
  return { ...rest, database: canary.database };
}

/** The rehearsal's state and status (the switchover's tracking, its own report as details), its switchover input and run, the sign-off handler. */
function begin(input: Ctx['input']): Ctx {
  const { smokeSql: _smoke, load: _load, forecast: _forecast, ...rest } = input;
  const sw = switchoverInput.parse({ ...rest, dryRun: false, mode: 'switchover', approval: { required: true, timeout: '1h', approvers: [] } });
  const names = input.tables.map((t) => t.table);
  const state: RehearsalStatus = {
    ...initialStatus('environment', names),
    rehearsal: {
      database: input.database,
      phases: REHEARSAL_PHASES.map((p, i): PhaseRecord => ({ n: i + 1, phase: p.phase, title: p.title, result: 'pending', summary: '', checks: [] })),
    },
  };
  const tracked = track(input, state, () => {
    state.rehearsal.report = report(ctx, ctx.failedPhase ? 'failed' : state.rehearsal.signoff ? 'signed_off' : 'in_progress');
    return state.rehearsal.report.markdown;
  });
  // The stages run under the rehearsal's phases: their own phase changes are not the rehearsal's.
  const run = newRun(sw, { ...tracked, setPhase: () => undefined });
  const ctx: Ctx = {
    id: workflowInfo().workflowId,
    input,
    sw,
    strategy: STRATEGIES[sw.strategy],
    run,
    tracked,
    state,
    plans: [],
    touched: false,
    smoke: [],
    smokeNotes: [],
    sizes: [],
    loadUnplanned: [],
    unpruned: [],
    unprunedNotes: [],
    audited: new Set(),
    refresh: () => tracked.refresh(),
  };
  setHandler(
    signoffSignal,
    (s) => {
      if (state.phase !== 'awaiting_signoff') return void state.ignoredSignals.push(`signoff by ${s?.by}: not waiting for sign-off (phase ${state.phase})`);
      if (!s?.by) return void state.ignoredSignals.push('signoff without "by": ignored');
      state.rehearsal.signoff = { by: s.by, comment: s.comment, at: new Date().toISOString() };
    },
    { description: DESCRIPTIONS.signoff },
  );
  return ctx;
}

/** The staging target must be configured and not production's; else nothing is changed. */
async function checkTarget(ctx: Ctx): Promise<void> {
  const { input } = ctx;
  try {
    await acts.rehearsalTarget(input.database, input.forecast && 'database' in input.forecast ? input.forecast.database : undefined);
  } catch (err) {
    ctx.state.error = errorMessage(err);
    ctx.tracked.setPhase('failed');
    // The activity's own type (InvalidInput, UnknownDatabase) at the top, not "Activity task failed".
    const type = (err as { cause?: { type?: string } }).cause?.type ?? 'InvalidInput';
    throw ApplicationFailure.create({ type, message: ctx.state.error, nonRetryable: true });
  }
}

/** Runs one phase and records it; false when it failed. Phase 10 ends when someone has read the report and signed it. */
async function runPhase(ctx: Ctx, rec: PhaseRecord): Promise<boolean> {
  rec.result = 'running';
  rec.startedAt = new Date().toISOString();
  ctx.tracked.setPhase(rec.phase);
  const t0 = Date.now();
  const outcome = await PHASES[rec.phase](ctx).catch((err): PhaseOutcome => ({ summary: errorMessage(err), checks: [bad(rec.title, errorMessage(err))] }));
  const result = resultOf(outcome);
  Object.assign(rec, { summary: outcome.summary, checks: outcome.checks, details: outcome.details, result, ms: Date.now() - t0 });
  if (result === 'fail') {
    const first = rec.checks.find((c) => c.status === 'fail')!;
    ctx.failedPhase = { n: rec.n, phase: rec.phase, title: rec.title, message: `${first.name}: ${first.detail}` };
    return false;
  }
  if (rec.phase === 'signoff') {
    rec.result = 'running';
    ctx.tracked.setPhase('awaiting_signoff');
    await condition(() => ctx.state.rehearsal.signoff !== undefined);
    const s = ctx.state.rehearsal.signoff!;
    Object.assign(rec, {
      result: 'pass',
      ms: Date.now() - t0,
      summary: `${rec.summary}; signed off by ${s.by}`,
      checks: [ok('sign-off', `${s.by}${s.comment ? `: ${s.comment}` : ''}`)],
    });
    await acts.recordEvent(ctx.input.database, ctx.input.schema, '(rehearsal)', 'SIGNOFF', { ...s, workflowId: ctx.id });
  }
  await auditPhases(ctx);
  ctx.refresh();
  return true;
}

/** Each finished phase as an audit row, once (the bookkeeping schema exists from phase 2 on). */
async function auditPhases(ctx: Ctx): Promise<void> {
  if (!ctx.touched) return;
  for (const p of ctx.state.rehearsal.phases.filter((x) => ['pass', 'fail', 'skipped'].includes(x.result) && !ctx.audited.has(x.n))) {
    await acts
      .recordEvent(ctx.input.database, ctx.input.schema, '(rehearsal)', `REHEARSAL-${String(p.n).padStart(2, '0')}-${p.phase.toUpperCase()}`, {
        result: p.result,
        ms: p.ms,
        summary: p.summary,
        checks: p.checks,
      })
      .then(() => ctx.audited.add(p.n))
      .catch(() => undefined);
  }
}

/** A failed phase: the rest not run, staging restored, the failure naming the phase. */
async function failed(ctx: Ctx): Promise<never> {
  const f = ctx.failedPhase!;
  for (const p of ctx.state.rehearsal.phases) if (p.result === 'pending') p.result = 'not_run';
  ctx.state.error = `phase ${f.n} (${f.title}) failed: ${f.message}`;
  ctx.tracked.setPhase('rolling_back');
  if (ctx.touched) ctx.restore = await restoreStaging(ctx);
  await auditPhases(ctx);
  ctx.tracked.setPhase('failed');
  throw ApplicationFailure.create({
    type: 'RehearsalFailed',
    message: `rehearsal failed in phase ${f.n} (${f.title}): ${f.message}. ${ctx.restore?.summary ?? 'Nothing was changed on staging.'}`,
    nonRetryable: true,
    details: [report(ctx, 'failed')],
  });
}

function report(ctx: Ctx, outcome: RehearsalReport['outcome']): RehearsalReport {
  const { state, input, failedPhase, restore } = ctx;
  const info = workflowInfo();
  const extra = {
    cutover: Object.values(state.cutover).map((c) => ({ table: c.table, lockMs: c.lockMs })),
    writer: ctx.writer?.report,
    forecast: ctx.forecast,
  };
  return {
    workflowId: info.workflowId,
    database: input.database,
    schema: input.schema,
    tables: input.tables.map((t) => t.table),
    outcome,
    failedPhase,
    phases: state.rehearsal.phases,
    switchoverWorkflowId: state.rehearsal.switchoverWorkflowId,
    rollbackWorkflowId: state.rehearsal.rollbackWorkflowId,
    ...extra,
    restore,
    signoff: state.rehearsal.signoff,
    markdown: renderRehearsal({ ...state, ...state.rehearsal, failedPhase, restore }, { ...extra, workflowId: info.workflowId, namespace: info.namespace }),
  };
}
