// The rehearsal: the seed's ten-phase staging rehearsal as one workflow, on a named staging
// target. Phases are a list of steps, each a small function; each is recorded (result, timing,
// checks) in `status`, in current details and as an audit row. A failed phase stops the
// rehearsal, puts staging back (plain tables, nothing of ours but audit rows) and fails with a
// report naming the phase. Otherwise it hands over a report with a production forecast and
// waits in `awaiting_signoff` for a `signoff` signal.
import {
  ActivityOptions,
  ApplicationFailure,
  ParentClosePolicy,
  RetryPolicy,
  condition,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { WriterControl, WriterPlans } from '../activities/writer';
import { rehearsalInput, switchoverInput, type RehearsalInput, type SwitchoverInput } from '../src/input';
import {
  REHEARSAL_PHASES,
  bad,
  ok,
  warn,
  forecastFrom,
  renderRehearsal,
  resultOf,
  type Check,
  type PhaseOutcome,
  type PhaseRecord,
  type RehearsalPhase,
  type RehearsalReport,
  type RehearsalStatus,
  type SmokeAnswer,
  type SmokeItem,
  type SmokePlan,
  type TableSizes,
  type WriterReport,
} from '../src/rehearsal';
import { DESCRIPTIONS, SwitchoverPhase, SwitchoverTables, approveSignal, rejectSignal, signoffSignal, statusQuery } from '../src/shared';
import { initialStatus, type Phase } from '../src/status';
import type { TablePlan } from '../src/types';
import type { RollbackReport } from './rollback';
import type { SwitchoverReport } from './switchover';
import { errorMessage, parseInput } from './util';

const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };
// Every activity heartbeats every 2 s (activities/index.ts): a lost worker is noticed within the heartbeat timeout.
const shortOpts: ActivityOptions = { startToCloseTimeout: '10 minutes', heartbeatTimeout: '10s', retry };
const longOpts: ActivityOptions = { startToCloseTimeout: '24 hours', heartbeatTimeout: '30s', retry };
const acts = proxyActivities<Activities>(shortOpts);
const longActs = proxyActivities<Activities>(longOpts);
/** The writer runs until told to stop; a retry starts a new writer that reads the last order. */
const writerOpts: ActivityOptions = { startToCloseTimeout: '24 hours', heartbeatTimeout: '20s', retry: { ...retry, maximumAttempts: 3 } };
const controlOpts: ActivityOptions = { startToCloseTimeout: '1 minute', heartbeatTimeout: '10s', retry: { ...retry, maximumAttempts: 3 } };

const withSummary = (summary: string, base: ActivityOptions = shortOpts): ActivityOptions => ({ ...base, summary });

/** What the steps share. */
interface Ctx {
  id: string;
  input: RehearsalInput;
  /** The switchover child's input: the rehearsal's own switchover fields, approval given by the rehearsal. */
  sw: SwitchoverInput;
  state: RehearsalStatus;
  plans: TablePlan[];
  /** Set once the rehearsal has changed staging (then a failure restores it). */
  touched: boolean;
  smoke: SmokeItem[];
  smokeNotes: string[];
  before?: { answers: SmokeAnswer[]; plans: SmokePlan[] };
  child?: { handle: ChildWorkflowHandle<never>; result: Promise<SwitchoverReport>; done: boolean };
  switchover?: SwitchoverReport;
  sizes: TableSizes[];
  writer?: { done: Promise<WriterReport>; settled: boolean; seq: number; report?: WriterReport; error?: string };
  /** Why the load could not run at all (no operation of the mix on any table). */
  loadSkipped?: string[];
  /** Tables the load generator could not plan (the load ran on the others). */
  loadUnplanned: string[];
  forecast?: RehearsalReport['forecast'];
  refresh(): void;
}

// ---- the writer ------------------------------------------------------------------------------

function startWriter(ctx: Ctx, plans: WriterPlans['plans']): void {
  const load = ctx.input.load!;
  const done = proxyActivities<Activities>(writerOpts).runWriter.executeWithOptions(
    withSummary(`live writer on ${ctx.input.database}: ${load.ratePerSec} ops/s on ${plans.length} table(s)`, writerOpts),
    [ctx.input.database, ctx.input.schema, plans, load],
  );
  const w: NonNullable<Ctx['writer']> = { done, settled: false, seq: 0 };
  done.then(
    (r) => Object.assign(w, { settled: true, report: r }),
    (err) => Object.assign(w, { settled: true, error: errorMessage(err) }),
  );
  ctx.writer = w;
  ctx.state.rehearsal.writer = { state: 'running', ops: 0, failures: 0, errors: [] };
}

async function steer(ctx: Ctx, state: WriterControl['state'], label: string): Promise<void> {
  const w = ctx.writer!;
  if (w.settled) throw new Error(`the live writer is not running (${w.error ?? 'it ended'})`);
  const a = await acts.writerControl.executeWithOptions(withSummary(`live writer: ${state} (${label})`, controlOpts), [
    ctx.input.database,
    ctx.input.schema,
    { state, label, seq: ++w.seq },
  ]);
  ctx.state.rehearsal.writer = { state, ops: a.ops, failures: a.failures, errors: a.errors ?? [] };
  ctx.refresh();
}

async function stopWriter(ctx: Ctx): Promise<WriterReport> {
  const w = ctx.writer!;
  if (!w.settled) await steer(ctx, 'stopped', 'stopped');
  const r = await w.done;
  ctx.state.rehearsal.writer = { state: 'stopped', ops: r.writes + r.failedWrites, failures: r.failedWrites, errors: r.firstError ? [r.firstError] : [] };
  return r;
}

// ---- the ten phases --------------------------------------------------------------------------

async function environment(ctx: Ctx): Promise<PhaseOutcome> {
  const { database, schema, tables, backup } = ctx.input;
  return acts.rehearsalEnvironment.executeWithOptions(withSummary(`environment of ${database}: version, disk, transactions, timeouts, permissions`), [
    { database, schema, tables: tables.map((t) => t.table), backup },
  ]);
}

async function prepare(ctx: Ctx): Promise<PhaseOutcome> {
  const db = ctx.input.database;
  const plan = await acts.preflight(ctx.sw);
  ctx.plans = plan.tables;
  ctx.touched = true;
  const checks: Check[] = plan.tables.flatMap((tp) => tp.warnings.map((w) => warn(`${tp.table} plan`, w)));
  await acts.ensureState(db);
  await acts.claimTables(db, ctx.plans);
  if (ctx.sw.strategy === 'attach') {
    // The attach strategy: its parent with the partitions from the cutoff on (no copy to prepare).
    for (const tp of ctx.plans) {
      const r = await acts.attachParent.executeWithOptions(withSummary(`rehearse prepare ${tp.table}: parent with ${tp.attach!.partitions.length} partitions from ${tp.attach!.cutoff}`), [
        db,
        tp,
        ctx.input.lockTimeoutMs,
      ]);
      checks.push(ok(`${tp.table} parent`, `${tp.names.partitioned}: ${r.partitions} ${tp.interval} partitions from the cutoff ${tp.attach!.cutoff}; ${tp.attach!.why}`));
    }
    return { summary: ctx.plans.map((tp) => `${tp.names.partitioned}: ${tp.attach!.partitions.length} partitions from ${tp.attach!.cutoff}, ${tp.attach!.history} before it`).join(', '), checks };
  }
  for (const tp of ctx.plans) {
    await longActs.prepareTable.executeWithOptions(withSummary(`rehearse prepare ${tp.table}: ${tp.partitions.length} ${tp.interval} partitions`, longOpts), [db, tp]);
    checks.push(...(await acts.rehearsalPrepareCheck(db, tp)));
  }
  return { summary: ctx.plans.map((tp) => `${tp.names.partitioned}: ${tp.partitions.length} partitions`).join(', '), checks };
}

async function triggerBehaviour(ctx: Ctx): Promise<PhaseOutcome> {
  const { database: db, schema, lockTimeoutMs } = ctx.input;
  const checks: Check[] = [];
  if (ctx.sw.strategy === 'attach') {
    // No dual writes in the attach strategy: what phase 2 made is removed as a rollback before cutover would.
    for (const tp of [...ctx.plans].reverse()) await acts.rollbackTable(db, tp, { restoreBackup: false, lockTimeoutMs });
    await acts.releaseClaims(db, schema, ctx.plans.map((p) => p.table));
    checks.push(...(await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id])).checks);
    return { summary: 'attach strategy: no dual-write triggers to test; the parents of phase 2 removed', checks };
  }
  for (const tp of ctx.plans) {
    await acts.installTriggers(db, tp);
    checks.push(
      ...(await acts.rehearsalTriggerTest.executeWithOptions(
        withSummary(`trigger behaviour ${tp.table}: insert, update, key move, upsert, delete of marked rows (rolled back)`),
        [db, tp],
      )),
    );
  }
  // Then removed, as a rollback before cutover would: triggers and partitioned copies dropped.
  for (const tp of [...ctx.plans].reverse()) await acts.rollbackTable(db, tp, { restoreBackup: false, lockTimeoutMs });
  await acts.releaseClaims(db, schema, ctx.plans.map((p) => p.table));
  checks.push(...(await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id])).checks);
  const tested = checks.filter((c) => c.status === 'ok' && / (insert|update|key-moving update|upsert|delete)/.test(c.name)).length;
  return { summary: `${tested} trigger checks passed; triggers and partitioned copies removed`, checks };
}

async function dryRun(ctx: Ctx): Promise<PhaseOutcome> {
  const r: SwitchoverReport = await executeChild('switchover', { args: [{ ...ctx.sw, dryRun: true }], workflowId: `${ctx.id}-dry-run` });
  const plan = r.plan!;
  const checks: Check[] = [];
  for (const tp of plan.tables) {
    const statements = Object.values(plan.sql[tp.table] ?? {}).reduce((a, s) => a + s.length, 0);
    const mine = ctx.plans.find((p) => p.table === tp.table);
    checks.push(
      mine && mine.partitions.length === tp.partitions.length
        ? ok(`${tp.table} plan`, `${tp.partitions.length} partitions, ${tp.indexes.length} indexes, ${statements} statements`)
        : warn(`${tp.table} plan`, `the dry run plans ${tp.partitions.length} partitions, phase 2 created ${mine?.partitions.length ?? 0}`),
    );
    checks.push(...tp.warnings.map((w) => warn(`${tp.table} plan`, w)));
  }
  return {
    summary: `plan for ${plan.tables.length} table(s) on ${plan.database}, as of ${plan.today}`,
    checks,
    details: { statements: Object.fromEntries(plan.tables.map((tp) => [tp.table, Object.fromEntries(Object.entries(plan.sql[tp.table] ?? {}).map(([k, v]) => [k, v.length]))])) },
  };
}

async function switchover(ctx: Ctx): Promise<PhaseOutcome> {
  const { database: db } = ctx.input;
  if (ctx.input.load) {
    // Planned on the plain tables, before the switchover touches them.
    const p = await acts.planWriterLoad.executeWithOptions(withSummary(`plan the load on ${ctx.input.tables.length} table(s)`), [
      db,
      ctx.input.schema,
      ctx.input.tables,
      ctx.input.load.mix,
      // The attach strategy: the load writes as an application within its cutoff does (the CHECK refuses later keys until cutover).
      ctx.sw.strategy === 'attach' ? Object.fromEntries(ctx.plans.map((tp) => [tp.table, tp.attach!.cutoff])) : undefined,
    ]);
    ctx.loadUnplanned = p.unplanned;
    if (p.runnable) {
      startWriter(ctx, p.plans);
      await steer(ctx, 'running', 'copy');
    } else ctx.loadSkipped = p.skipped;
  }
  const childId = `${ctx.id}-switchover`;
  ctx.state.rehearsal.switchoverWorkflowId = childId;
  // REQUEST_CANCEL: if the rehearsal is cancelled, the switchover compensates (rolls back) itself.
  const handle = await startChild('switchover', { args: [ctx.sw], workflowId: childId, parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL });
  const result = handle.result() as Promise<SwitchoverReport>;
  result.catch(() => undefined); // awaited below; this only marks a failure as handled meanwhile
  ctx.child = { handle: handle as ChildWorkflowHandle<never>, result, done: false };
  ctx.refresh();
  const ends = ['awaiting_approval', 'failed', 'rolled_back', 'done'];
  // The load's writes count per phase of the switchover: copy, verify, awaiting_approval.
  if (ctx.writer) {
    const at = await longActs.waitForWorkflowPhase.executeWithOptions(withSummary(`wait for switchover ${childId} to verify`, longOpts), [childId, ['verify', ...ends]]);
    if (at === 'verify') await steer(ctx, 'running', 'verify');
  }
  const reached = await longActs.waitForWorkflowPhase.executeWithOptions(withSummary(`wait for switchover ${childId} to ask for approval`, longOpts), [
    childId,
    ends,
  ]);
  if (reached !== 'awaiting_approval') {
    await result;
    throw new Error(`the switchover ended in phase ${reached} without asking for approval`);
  }
  // The baseline for phases 6 and 7, read with the writer paused so both sides see the same rows.
  let copied: { ops: number; failures: number; errors: string[] } | undefined;
  if (ctx.writer) {
    await steer(ctx, 'running', 'awaiting_approval');
    await steer(ctx, 'paused', 'awaiting_approval');
    copied = ctx.state.rehearsal.writer;
  }
  if (ctx.input.smokeSql) ctx.smoke = ctx.input.smokeSql.map((s, i) => ({ name: `smokeSql[${i}]`, sql: s, builtin: false }));
  else ({ items: ctx.smoke, notes: ctx.smokeNotes } = await acts.builtinSmoke(db, ctx.plans));
  ctx.before = {
    answers: await acts.smokeAnswers.executeWithOptions(withSummary(`application testing: ${ctx.smoke.length} statements before cutover`), [db, ctx.smoke]),
    plans: await acts.smokePlans.executeWithOptions(withSummary(`performance: EXPLAIN and timings before cutover`), [db, ctx.smoke, ctx.plans]),
  };
  // The load writes on through the cutover: its `cutover` segment holds the stall writers see.
  if (ctx.writer) await steer(ctx, 'running', 'cutover');
  await handle.signal(approveSignal, { by: `rehearsal ${ctx.id}`, comment: 'approved by the rehearsal after its before-cutover checks' });
  ctx.state.approval = { state: 'approved', by: `rehearsal ${ctx.id}`, at: new Date().toISOString() };
  const report = await result;
  ctx.child.done = true;
  if (ctx.writer) await steer(ctx, 'running', 'after');
  ctx.switchover = report;
  if (report.outcome !== 'done') throw new Error(`the switchover ended "${report.outcome}" instead of cutting over`);
  for (const t of report.tables) if (t.cutover) ctx.state.cutover[t.table] = t.cutover;
  ctx.sizes = await acts.measureTables(db, ctx.plans);
  const checks: Check[] = report.tables.map((t) => {
    const attached = t.stages.find((x) => x.stage === 'ATTACH-VERIFY');
    if (ctx.sw.strategy === 'attach') {
      return attached
        ? ok(`${t.table} switchover`, `${attached.rows} rows attached as the history partition (no copy), verified in ${attached.ms} ms, cutover lock ${t.cutover?.lockMs.toFixed(1)} ms`)
        : bad(`${t.table} switchover`, 'not verified');
    }
    return t.verification?.ok
      ? ok(`${t.table} switchover`, `${t.copy.rows} rows copied in ${t.copy.ms} ms, verified in ${t.verification.ms} ms, cutover lock ${t.cutover?.lockMs.toFixed(1)} ms`)
      : bad(`${t.table} switchover`, 'not verified');
  });
  if (copied) {
    checks.push(
      copied.failures
        ? bad('live writer', `${copied.failures} of ${copied.ops} ops failed during copy and verify; first: ${copied.errors.join('; ')}`)
        : ok('live writer', `${copied.ops} ops committed during copy and verify, none failed; writing on through the cutover`),
    );
  }
  return { summary: `cut over ${report.tables.map((t) => `${t.table} (lock ${t.cutover?.lockMs.toFixed(1)} ms)`).join(', ')}`, checks, details: { switchoverWorkflowId: childId } };
}

/** Runs `fn` with the load paused (its ops in flight done), so a comparison sees a quiet table. */
async function quiet<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  if (!ctx.writer) return fn();
  await steer(ctx, 'paused', 'after');
  const out = await fn();
  await steer(ctx, 'running', 'after');
  return out;
}

async function applicationTesting(ctx: Ctx): Promise<PhaseOutcome> {
  const db = ctx.input.database;
  // With the load writing through the cutover, the answers before it are of other rows: compare
  // with the plain table the mirror keeps equal (`<table>_legacy` under the table's name, in a
  // rolled-back transaction), read in the same quiet moment.
  const { after, before } = await quiet(ctx, async () => ({
    after: await acts.smokeAnswers.executeWithOptions(withSummary(`application testing: ${ctx.smoke.length} statements after cutover`), [db, ctx.smoke]),
    before: ctx.writer && ctx.sw.strategy !== 'attach'
      ? await acts.smokeAnswers.executeWithOptions(withSummary(`application testing: ${ctx.smoke.length} statements on the legacy tables`), [db, ctx.smoke, ctx.plans])
      : ctx.before!.answers,
  }));
  const checks: Check[] = ctx.smokeNotes.map((n) => warn('built-in set', n));
  ctx.smoke.forEach((item, i) => {
    const b = before[i];
    const a = after[i];
    const show = (x: SmokeAnswer) => `${x.command} ${x.rowCount} row(s)${x.preview ? ` ${x.preview}` : ''}`;
    if (!b.ok) checks.push(bad(item.name, `failed before cutover: ${b.error}`));
    else if (!a.ok) checks.push(bad(item.name, `failed after cutover: ${a.error}`));
    else if (ctx.writer && ctx.sw.strategy === 'attach') {
      // No legacy copy to read the same rows from while the load writes: success only.
      checks.push(ok(item.name, `${a.command} succeeded after cutover (${a.rowCount} row(s); the attach strategy keeps no copy to compare with while the load writes)`));
    } else if (a.command !== b.command || a.rowCount !== b.rowCount || a.answer !== b.answer) {
      checks.push(bad(item.name, `answer changed after cutover: before ${show(b)}; after ${show(a)}`));
    } else if (item.builtin && !a.answer && a.rowCount !== 1) checks.push(bad(item.name, `${a.command} touched ${a.rowCount} rows, expected 1`));
    else checks.push(ok(item.name, a.answer ? `same answer (${a.rowCount} rows)` : `${a.command} succeeded (${a.rowCount} row(s), rolled back)`));
  });
  const failed = checks.filter((c) => c.status === 'fail').length;
  return { summary: failed ? `${failed} of ${ctx.smoke.length} statements differ or fail after cutover` : `${ctx.smoke.length} statements: same answers, writes succeed`, checks };
}

async function performance(ctx: Ctx): Promise<PhaseOutcome> {
  const after = await quiet(ctx, () =>
    acts.smokePlans.executeWithOptions(withSummary('performance: EXPLAIN and timings after cutover'), [ctx.input.database, ctx.smoke, ctx.plans]),
  );
  const checks: Check[] = [];
  const timings: Record<string, { before: number; after: number }> = {};
  // Statements that probe every partition, per table: one finding per table, not one per statement.
  const unpruned = new Map<string, { total: number; names: string[] }>();
  ctx.smoke.forEach((item, i) => {
    const b = ctx.before!.plans[i];
    const a = after[i];
    if (!a.ok) return void checks.push(bad(item.name, `EXPLAIN failed after cutover: ${a.error}`));
    timings[item.name] = { before: b.ms, after: a.ms };
    const parts = a.partitions.map((p) => `${p.table}: ${p.scanned} of ${p.total} partitions`).join(', ') || 'no partitioned table';
    const time = `${b.ms} ms → ${a.ms} ms`;
    const pruned = a.partitions.every((p) => p.total <= 1 || p.scanned < p.total);
    if (item.expectPruning && !(a.partitions.length && a.partitions.every((p) => p.scanned <= 1))) {
      checks.push(bad(item.name, `partition pruning expected on a range of one partition, plan reads ${parts}`));
    } else if (!pruned) {
      checks.push(ok(item.name, `${parts} (no partition key in the query); ${time}`));
      for (const p of a.partitions.filter((x) => x.total > 1 && x.scanned === x.total)) {
        const u = unpruned.get(p.table) ?? { total: p.total, names: [] };
        u.names.push(item.name.replace(`${p.table}: `, ''));
        unpruned.set(p.table, u);
      }
    } else if (a.ms > 5 * b.ms && a.ms - b.ms > 20) checks.push(warn(item.name, `slower after cutover: ${time}; plan reads ${parts}`));
    else checks.push(ok(item.name, `${item.expectPruning ? 'pruned: ' : ''}${parts}; ${time}`));
  });
  for (const [table, u] of unpruned) {
    checks.push(warn(`${table} lookups`, `${u.names.join(', ')}: no partition key, so every one of the ${u.total} partitions is probed; add the key where the application knows it`));
  }
  const prunedCount = ctx.smoke.filter((s, i) => s.expectPruning && checks.find((c) => c.name === s.name)?.status === 'ok' && after[i].ok).length;
  return { summary: `${ctx.smoke.length} plans compared; ${prunedCount} range scan(s) pruned to one partition`, checks, details: { timings } };
}

async function load(ctx: Ctx): Promise<PhaseOutcome> {
  if (ctx.loadSkipped) {
    return {
      summary: `the load could not run: no operation of the mix can run on any table (${ctx.loadSkipped.join('; ')})`,
      checks: ctx.loadSkipped.map((why) => warn('not run', why)),
      skipped: true,
      details: { writes: 0, failedWrites: 0, skipped: ctx.loadSkipped },
    };
  }
  if (!ctx.writer) return { summary: 'no load configured: the live writer did not run', checks: [], skipped: true };
  await steer(ctx, 'running', 'after');
  await sleep(ctx.input.load!.durationMs);
  const r = await stopWriter(ctx);
  const lat = `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`;
  const stall = r.bySegment.cutover?.latencyMs.max;
  const checks = [
    r.writes > 0
      ? ok('writes', `${r.writes} writes at ${r.opsPerSec} ops/s (${Object.entries(r.byKind).map(([k, v]) => `${k} ${v.writes}`).join(', ')})`)
      : bad('writes', 'the load committed no write'),
    r.failedWrites ? bad('failed writes', `${r.failedWrites} failed; first: ${r.firstError}`) : ok('failed writes', 'none'),
    ok('latency', lat),
    ...Object.entries(r.bySegment).map(([k, v]) =>
      ok(`segment ${k}`, `${v.writes} writes, ${v.failedWrites} failed${v.firstError ? ` (first: ${v.firstError})` : ''}, p50 ${v.latencyMs.p50} ms, p99 ${v.latencyMs.p99} ms, max ${v.latencyMs.max} ms`),
    ),
    ...ctx.loadUnplanned.map((why) => warn('not run', why)),
    ...Object.entries(r.skipped).map(([k, why]) => warn(`not run: ${k}`, why)),
  ];
  const segments = Object.fromEntries(
    Object.entries(r.bySegment).map(([k, v]) => [k, { writes: v.writes, failedWrites: v.failedWrites, firstError: v.firstError, p50: v.latencyMs.p50, p99: v.latencyMs.p99, max: v.latencyMs.max }]),
  );
  return {
    summary: `${r.writes} writes, ${r.failedWrites} failed, ${lat}${stall === undefined ? '' : `; writers stalled at most ${stall} ms at cutover`}`,
    checks,
    details: { writes: r.writes, failedWrites: r.failedWrites, firstError: r.firstError, latencyMs: r.latencyMs, segments, cutoverStallMs: stall ?? null, skipped: r.skipped },
  };
}

async function rollbackTest(ctx: Ctx): Promise<PhaseOutcome> {
  const { database: db, schema } = ctx.input;
  // The application's truth: the tables as it sees them by name, with the writer stopped.
  const truth = await acts.tableTruth(db, ctx.plans);
  const rollbackId = `${ctx.id}-rollback`;
  ctx.state.rehearsal.rollbackWorkflowId = rollbackId;
  const rb: RollbackReport = await executeChild('rollback', {
    args: [{ switchoverWorkflowId: ctx.state.rehearsal.switchoverWorkflowId, database: db, schema }],
    workflowId: rollbackId,
    parentClosePolicy: ParentClosePolicy.ABANDON,
  });
  const after = await acts.tableTruth(db, ctx.plans);
  const checks: Check[] = ctx.plans.map((tp) => {
    const t = truth[tp.table];
    const a = after[tp.table];
    const same = t.rows === a.rows && t.rowHash === a.rowHash && JSON.stringify(t.sums) === JSON.stringify(a.sums);
    return same
      ? ok(`${tp.table} data`, `${a.rows} rows, sums and row hash equal to what the application saw before the rollback`)
      : bad(`${tp.table} data`, `after rollback ${a.rows} rows (hash ${a.rowHash}), the application saw ${t.rows} rows (hash ${t.rowHash})`);
  });
  const left = await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id, `${ctx.id}-switchover`, `${ctx.id}-dry-run`]);
  checks.push(...left.checks);
  return {
    summary: `rolled back ${rb.tables.map((t) => `${t.table} (was ${t.from})`).join(', ')}; tables compared with the application's truth`,
    checks,
    details: { rollbackWorkflowId: rollbackId, truth, droppedMarkedRows: left.droppedMarked },
  };
}

async function signoff(ctx: Ctx): Promise<PhaseOutcome> {
  const { input } = ctx;
  let rows: Record<string, number> = {};
  let source = `staging's own row counts (${input.database})`;
  if (input.forecast && 'rows' in input.forecast && input.forecast.rows) {
    rows = input.forecast.rows;
    source = 'row counts given in the input';
  } else if (input.forecast && 'database' in input.forecast) {
    rows = await acts.productionRows(input.forecast.database, input.schema, input.tables.map((t) => t.table));
    source = `row counts of target "${input.forecast.database}" (read only)`;
  }
  const measured = ctx.sizes.map((s) => {
    const t = ctx.switchover!.tables.find((x) => x.table === s.table)!;
    return { ...s, rows: t.copy.rows || s.rows, copyMs: t.copy.ms, verifyMs: t.verification?.ms ?? 0, lockMs: t.cutover?.lockMs ?? 0 };
  });
  const r = ctx.writer?.report;
  const load = r && { writesPerSec: r.opsPerSec, p99Ms: r.latencyMs.p99, cutoverStallMs: r.bySegment.cutover?.latencyMs.max ?? null };
  ctx.forecast = forecastFrom(measured, rows, source, input.backup === 'table', load);
  return { summary: `forecast from ${source}`, checks: [], details: { forecast: ctx.forecast } };
}

const STEPS: Record<RehearsalPhase, (ctx: Ctx) => Promise<PhaseOutcome>> = {
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

/** After a failed phase: writer stopped, switchover rejected, every table rolled back, leftovers swept. */
async function restoreStaging(ctx: Ctx): Promise<NonNullable<RehearsalReport['restore']>> {
  const { database: db, schema, tables } = ctx.input;
  const checks: Check[] = [];
  if (ctx.writer && !ctx.writer.settled) {
    await stopWriter(ctx).then(
      (r) => checks.push(ok('live writer', `stopped after ${r.writes} writes, ${r.failedWrites} failed`)),
      (err) => checks.push(bad('live writer', errorMessage(err))),
    );
  }
  if (ctx.child && !ctx.child.done) {
    await ctx.child.handle.signal(rejectSignal, { by: `rehearsal ${ctx.id}`, reason: 'a rehearsal phase failed' }).catch(() => undefined);
    await ctx.child.result.then(
      (r) => checks.push(ok('switchover', `ended ${r.outcome}`)),
      (err) => checks.push(ok('switchover', `ended: ${errorMessage(err)}`)),
    );
  }
  try {
    const rb: RollbackReport = await executeChild('rollback', {
      args: [{ tables, database: db, schema }],
      workflowId: `${ctx.id}-restore`,
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    checks.push(ok('rollback', rb.tables.map((t) => `${t.table} back to plain (was ${t.from})`).join(', ') || 'nothing to roll back'));
  } catch (err) {
    checks.push(bad('rollback', errorMessage(err)));
  }
  if (ctx.plans.length) {
    const left = await acts.rehearsalLeftovers(db, ctx.plans, [ctx.id, `${ctx.id}-switchover`, `${ctx.id}-dry-run`]).catch((err) => ({
      checks: [bad('leftovers', errorMessage(err))],
    }));
    checks.push(...left.checks);
  }
  const failed = checks.filter((c) => c.status === 'fail');
  return {
    ok: !failed.length,
    summary: failed.length ? `staging NOT fully restored: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}` : 'staging tables are plain again; nothing of ours is left but audit rows',
    checks,
  };
}

export async function rehearsal(raw: unknown): Promise<RehearsalReport> {
  const input = parseInput(rehearsalInput, raw, 'rehearsal', 'Nothing was changed; fix the input and start again.');
  const info = workflowInfo();
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
  let searchAttributes = false;
  let failedPhase: RehearsalReport['failedPhase'];
  let restore: RehearsalReport['restore'];
  const ctx: Ctx = { id: info.workflowId, input, sw, state, plans: [], touched: false, smoke: [], smokeNotes: [], sizes: [], loadUnplanned: [], refresh: () => refresh() };

  const report = (outcome: RehearsalReport['outcome']): RehearsalReport => {
    const extra = {
      cutover: Object.values(state.cutover).map((c) => ({ table: c.table, lockMs: c.lockMs })),
      writer: ctx.writer?.report,
      forecast: ctx.forecast,
    };
    return {
      workflowId: info.workflowId,
      database: input.database,
      schema: input.schema,
      tables: names,
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
  };
  function refresh() {
    state.rehearsal.report = report(failedPhase ? 'failed' : state.rehearsal.signoff ? 'signed_off' : 'in_progress');
    setCurrentDetails(state.rehearsal.report.markdown);
  }
  const setPhase = (phase: Phase) => {
    state.phase = phase;
    if (searchAttributes) upsertSearchAttributes([{ key: SwitchoverPhase, value: phase }]);
    refresh();
  };

  setHandler(statusQuery, () => state, { description: DESCRIPTIONS.status });
  setHandler(
    signoffSignal,
    (s) => {
      if (state.phase !== 'awaiting_signoff') return void state.ignoredSignals.push(`signoff by ${s?.by}: not waiting for sign-off (phase ${state.phase})`);
      if (!s?.by) return void state.ignoredSignals.push('signoff without "by": ignored');
      state.rehearsal.signoff = { by: s.by, comment: s.comment, at: new Date().toISOString() };
    },
    { description: DESCRIPTIONS.signoff },
  );

  searchAttributes = (await acts.capabilities()).searchAttributes;
  if (searchAttributes) upsertSearchAttributes([{ key: SwitchoverTables, value: names }]);
  try {
    await acts.rehearsalTarget(input.database, input.forecast && 'database' in input.forecast ? input.forecast.database : undefined);
  } catch (err) {
    state.error = errorMessage(err);
    setPhase('failed');
    // The activity's own type (InvalidInput, UnknownDatabase) at the top, not "Activity task failed".
    const type = (err as { cause?: { type?: string } }).cause?.type ?? 'InvalidInput';
    throw ApplicationFailure.create({ type, message: state.error, nonRetryable: true });
  }

  const audited = new Set<number>();
  const auditPhases = async () => {
    if (!ctx.touched) return; // the bookkeeping schema exists from phase 2 on
    for (const p of state.rehearsal.phases.filter((x) => ['pass', 'fail', 'skipped'].includes(x.result) && !audited.has(x.n))) {
      await acts
        .recordEvent(input.database, input.schema, '(rehearsal)', `REHEARSAL-${String(p.n).padStart(2, '0')}-${p.phase.toUpperCase()}`, {
          result: p.result,
          ms: p.ms,
          summary: p.summary,
          checks: p.checks,
        })
        .then(() => audited.add(p.n))
        .catch(() => undefined);
    }
  };

  for (const rec of state.rehearsal.phases) {
    rec.result = 'running';
    rec.startedAt = new Date().toISOString();
    setPhase(rec.phase);
    const t0 = Date.now();
    let outcome: PhaseOutcome;
    try {
      outcome = await STEPS[rec.phase](ctx);
    } catch (err) {
      outcome = { summary: errorMessage(err), checks: [bad(rec.title, errorMessage(err))] };
    }
    const result = resultOf(outcome);
    Object.assign(rec, { summary: outcome.summary, checks: outcome.checks, details: outcome.details, result, ms: Date.now() - t0 });
    if (result === 'fail') {
      const first = rec.checks.find((c) => c.status === 'fail')!;
      failedPhase = { n: rec.n, phase: rec.phase, title: rec.title, message: `${first.name}: ${first.detail}` };
      break;
    }
    if (rec.phase === 'signoff') {
      // Phase 10 ends when someone has read the report and signed it.
      rec.result = 'running';
      setPhase('awaiting_signoff');
      await condition(() => state.rehearsal.signoff !== undefined);
      const s = state.rehearsal.signoff!;
      Object.assign(rec, { result: 'pass', ms: Date.now() - t0, summary: `${rec.summary}; signed off by ${s.by}`, checks: [ok('sign-off', `${s.by}${s.comment ? `: ${s.comment}` : ''}`)] });
      await acts.recordEvent(input.database, input.schema, '(rehearsal)', 'SIGNOFF', { ...s, workflowId: info.workflowId });
    }
    await auditPhases();
    refresh();
  }

  if (failedPhase) {
    for (const p of state.rehearsal.phases) if (p.result === 'pending') p.result = 'not_run';
    state.error = `phase ${failedPhase.n} (${failedPhase.title}) failed: ${failedPhase.message}`;
    setPhase('rolling_back');
    if (ctx.touched) restore = await restoreStaging(ctx);
    await auditPhases();
    setPhase('failed');
    throw ApplicationFailure.create({
      type: 'RehearsalFailed',
      message: `rehearsal failed in phase ${failedPhase.n} (${failedPhase.title}): ${failedPhase.message}. ${restore?.summary ?? 'Nothing was changed on staging.'}`,
      nonRetryable: true,
      details: [report('failed')],
    });
  }
  setPhase('done');
  return report('signed_off');
}
