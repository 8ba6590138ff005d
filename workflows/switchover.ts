// The switchover: preflight → backup → prepare → triggers → copy → verify → await approval →
// cutover. Orchestration only: every side effect is an activity. Any failure after side effects
// began runs the rollback workflow as compensation (a child that outlives this one).
import {
  ActivityCancellationType,
  ActivityOptions,
  ApplicationFailure,
  RetryPolicy,
  CancellationScope,
  ParentClosePolicy,
  condition,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { TablePlan, CopyResult, CopyStream, RecheckResult, CutoverResult, Plan, StageRecord, TableVerification } from '../src/types';
import { describeIssues, retuneSpec, switchoverInput, type SwitchoverInput } from '../src/input';
import {
  DESCRIPTIONS,
  SwitchoverPhase,
  SwitchoverTables,
  approveSignal,
  approveUpdate,
  controlsQuery,
  pauseUpdate,
  progressSignal,
  rejectSignal,
  rejectUpdate,
  resumeUpdate,
  retuneUpdate,
  statusQuery,
} from '../src/shared';
import type { ApproveSignal, Phase, RejectSignal, SwitchoverStatus } from '../src/status';
import { renderDetails } from '../src/details';
import { copyStreamsFor, durationMs, errorMessage, errorType, ownFailure } from './util';
import type { RollbackReport } from './rollback';

const retry: RetryPolicy = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };
/**
 * Every activity heartbeats every 2 s while it runs (activities/index.ts), so a lost worker is
 * noticed within HEARTBEAT_TIMEOUT in any stage, and a cancellation (reject, workflow cancel)
 * reaches it. The workflow waits until a cancelled activity has stopped before it rolls back.
 */
const HEARTBEAT_TIMEOUT = '10s';
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;
const shortOpts: ActivityOptions = { startToCloseTimeout: '5 minutes', heartbeatTimeout: HEARTBEAT_TIMEOUT, cancellationType, retry };
/** Long stages also heartbeat with their position (each copy batch). */
const longOpts: ActivityOptions = { startToCloseTimeout: '24 hours', heartbeatTimeout: HEARTBEAT_TIMEOUT, cancellationType, retry };
/** Cutover: each attempt waits at most lock_timeout for its lock; Temporal backs off between attempts. */
const cutoverOpts: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType,
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 20 },
};
/** Phases in which the operator may pause, resume and retune (everything before cutover). */
const CONTROLLABLE: Phase[] = ['preflight', 'backup', 'prepare', 'triggers', 'copy', 'verify', 'awaiting_approval'];
const acts = proxyActivities<Activities>(shortOpts);
const longActs = proxyActivities<Activities>(longOpts);

/** A copy stream's key range for its summary, inclusive: `id 1..500`, the last open-ended `id 501..1000+`. */
function streamRange(tp: TablePlan, s: CopyStream): string {
  if (!tp.splitColumn || !tp.splitRange) return 'all rows';
  const lo = s.lo ?? tp.splitRange.min;
  const hi = s.hi !== null ? String(BigInt(s.hi) - 1n) : `${tp.splitRange.max}+`;
  return `${tp.splitColumn} ${lo}..${hi}`;
}

/** Options with a summary naming the stage, table and range, so the history reads as a log. */
function opts(summary: string, base: ActivityOptions): ActivityOptions {
  return { ...base, summary };
}

export interface TableReport {
  table: string;
  partitionsCreated: number;
  stages: StageRecord[];
  copy: {
    rows: number;
    ms: number;
    streams: CopyResult[];
    recheck?: RecheckResult;
    indexes?: { indexes: number; partitionIndexes: number; foreignKeys: number; ms: number };
  };
  verification?: TableVerification;
  cutover?: CutoverResult;
}

export interface SwitchoverReport {
  workflowId: string;
  outcome: 'done' | 'dry_run' | 'rejected' | 'timed_out' | 'cleaned';
  database: string;
  schema: string;
  tables: TableReport[];
  approval: SwitchoverStatus['approval'];
  phaseMs: Record<string, number>;
  plan?: Plan;
  rollback?: RollbackOutcome;
}

/** What the compensation did: the rollback child's report, its id, and whether it completed. */
export type RollbackOutcome = RollbackReport & { workflowId: string; ok: boolean; error?: string };

export async function switchover(raw: unknown): Promise<SwitchoverReport> {
  const parsed = switchoverInput.safeParse(raw ?? {});
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'InvalidInput',
      message: `invalid switchover input: ${describeIssues(parsed.error)}. Nothing was changed; fix the input and start again.`,
      nonRetryable: true,
    });
  }
  const input: SwitchoverInput = parsed.data;
  const info = workflowInfo();
  const names = input.tables.map((t) => t.table);
  const state: SwitchoverStatus = {
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
  const controls = state.throttle!;
  const reports = new Map<string, TableReport>();
  const phaseMs: Record<string, number> = {};
  const streamProgress = new Map<string, { rows: number; rate: number; brakes: number; brake: string | null }>();
  /** Copy streams per table, and those finished (the parallelism holds streams until lower ones finish). */
  const copyStreams = new Map<string, number>();
  const streamsDone = new Set<string>();
  /** The stages from ensureState through verification: cancelled by a reject while one runs. */
  const stages = new CancellationScope();
  let phaseStart = Date.now();
  let decision: 'approved' | 'rejected' | undefined;
  let searchAttributes = false;

  const refresh = () => setCurrentDetails(renderDetails(state, { workflowId: info.workflowId, namespace: info.namespace }));
  const setPhase = (phase: Phase) => {
    phaseMs[state.phase] = (phaseMs[state.phase] ?? 0) + (Date.now() - phaseStart);
    phaseStart = Date.now();
    state.phase = phase;
    if (searchAttributes) upsertSearchAttributes([{ key: SwitchoverPhase, value: phase }]);
    refresh();
  };

  setHandler(statusQuery, () => state, { description: DESCRIPTIONS.status });
  const approvers = input.approval.approvers;
  /** Why an approval cannot be accepted now, or null. */
  const approveRefusal = (s: ApproveSignal | undefined): string | null => {
    if (state.approval.state !== 'waiting' || decision) return `approve by ${s?.by}: not waiting for approval`;
    if (!s?.by) return 'approve without "by": ignored';
    if (approvers.length && !approvers.includes(s.by)) return `approve by ${s.by}: not in approval.approvers (${approvers.join(', ')})`;
    return null;
  };
  const approve = (s: ApproveSignal) => {
    decision = 'approved';
    state.approval = { state: 'approved', by: s.by, comment: s.comment, at: new Date().toISOString() };
    refresh();
  };
  /** Why a reject cannot be accepted now, or null. A reject is honoured until cutover begins. */
  const rejectRefusal = (s: RejectSignal | undefined): string | null => {
    if (decision || ['cutover', 'cleanup', 'done', 'rolling_back', 'rolled_back', 'failed'].includes(state.phase)) {
      return `reject by ${s?.by}: ${decision ? `already ${decision}` : `too late, phase ${state.phase}`}`;
    }
    if (!s?.by) return 'reject without "by": ignored';
    if (approvers.length && !approvers.includes(s.by)) return `reject by ${s.by}: not in approval.approvers`;
    return null;
  };
  const reject = (s: RejectSignal) => {
    decision = 'rejected';
    state.approval = { state: 'rejected', by: s.by, reason: s.reason, at: new Date().toISOString() };
    // A running stage stops at once (its activity sees the cancellation at its next heartbeat),
    // then the rollback runs. At the approval point nothing runs: the wait below sees the decision.
    if (state.phase !== 'awaiting_approval') stages.cancel();
    refresh();
  };
  setHandler(
    approveSignal,
    (s) => {
      const refused = approveRefusal(s);
      if (refused) return void state.ignoredSignals.push(refused);
      approve(s);
    },
    { description: DESCRIPTIONS.approve },
  );
  setHandler(
    rejectSignal,
    (s) => {
      const refused = rejectRefusal(s);
      if (refused) return void state.ignoredSignals.push(refused);
      reject(s);
    },
    { description: DESCRIPTIONS.reject },
  );
  // The same decisions as Updates: a refused one answers at once and leaves no event in the history.
  setHandler(
    approveUpdate,
    (s) => {
      approve(s);
      return state.approval;
    },
    {
      description: DESCRIPTIONS.approveUpdate,
      validator: (s) => {
        if (!s?.by) throw new Error('approve refused: give "by" (who approves)');
        if (state.phase !== 'awaiting_approval' || state.approval.state !== 'waiting' || decision) {
          throw new Error(`approve by ${s.by} refused: not waiting for approval (phase ${state.phase}${decision ? `, already ${decision}` : ''})`);
        }
        const refused = approveRefusal(s);
        if (refused) throw new Error(refused.replace(/^approve by (.*?): /, 'approve by $1 refused: '));
      },
    },
  );
  setHandler(
    rejectUpdate,
    (s) => {
      reject(s);
      return state.approval;
    },
    {
      description: DESCRIPTIONS.rejectUpdate,
      validator: (s) => {
        if (!s?.by) throw new Error('reject refused: give "by" (who rejects)');
        const refused = rejectRefusal(s);
        if (refused) throw new Error(refused.replace(/^reject by (.*?): /, 'reject by $1 refused: '));
      },
    },
  );
  // Pause, resume, retune: the copy reads the live settings before each batch (controlsQuery);
  // the workflow starts no next stage while paused.
  const change = (by: string, what: string) => {
    controls.changes.push({ by, at: new Date().toISOString(), what });
    if (controls.changes.length > 20) controls.changes.shift();
    refresh();
  };
  const notBeforeCutover = (what: string) => {
    if (!CONTROLLABLE.includes(state.phase)) throw new Error(`${what} refused: the switchover is in phase ${state.phase}; settings can change only before cutover`);
  };
  setHandler(
    pauseUpdate,
    (p) => {
      controls.paused = { by: p.by, reason: p.reason, at: new Date().toISOString() };
      change(p.by, `paused: ${p.reason}`);
      return controls;
    },
    {
      description: DESCRIPTIONS.pause,
      validator: (p) => {
        if (!p?.by || !p.reason) throw new Error('pause refused: give "by" (who pauses) and "reason"');
        notBeforeCutover('pause');
        if (controls.paused) throw new Error(`pause refused: already paused by ${controls.paused.by} (${controls.paused.reason})`);
      },
    },
  );
  setHandler(
    resumeUpdate,
    (r) => {
      const was = controls.paused;
      controls.paused = null;
      change(r.by, `resumed (paused by ${was?.by}: ${was?.reason})`);
      return controls;
    },
    {
      description: DESCRIPTIONS.resume,
      validator: (r) => {
        if (!r?.by) throw new Error('resume refused: give "by" (who resumes)');
        if (!controls.paused) throw new Error('resume refused: not paused');
      },
    },
  );
  setHandler(
    retuneUpdate,
    (raw) => {
      const r = retuneSpec.parse(raw);
      const what: string[] = [];
      for (const k of ['batchSize', 'parallelism', 'pauseMs', 'maxBatchMs', 'maxLockWaitMs', 'maxReplicationLagMs', 'brakePauseMs'] as const) {
        if (r[k] === undefined) continue;
        const next = r[k] ?? undefined;
        if (next === controls[k]) continue;
        what.push(`${k} ${controls[k] ?? 'off'} → ${next ?? 'off'}`);
        Object.assign(controls, { [k]: next });
      }
      change(r.by, what.length ? what.join(', ') : 'no change');
      return controls;
    },
    {
      description: DESCRIPTIONS.retune,
      validator: (raw) => {
        const r = retuneSpec.safeParse(raw ?? {});
        if (!r.success) throw new Error(`retune refused: ${describeIssues(r.error)}`);
        notBeforeCutover('retune');
      },
    },
  );
  setHandler(
    controlsQuery,
    (table, stream) => {
      // A lower parallelism holds a table's higher streams: a stream copies once fewer than
      // `parallelism` streams below it are unfinished (its key range is fixed when it starts).
      const busy: number[] = [];
      for (let i = 0; i < stream; i++) if (!streamsDone.has(`${table}/${i}`)) busy.push(i + 1);
      return {
        paused: controls.paused ? `paused by ${controls.paused.by}: ${controls.paused.reason}` : null,
        hold:
          busy.length >= controls.parallelism
            ? `held: parallelism ${controls.parallelism}, stream${busy.length > 1 ? 's' : ''} ${busy.join(', ')} of ${copyStreams.get(table) ?? '?'} still copying`
            : null,
        batchSize: controls.batchSize,
        pauseMs: controls.pauseMs,
        brake: { maxBatchMs: controls.maxBatchMs, maxLockWaitMs: controls.maxLockWaitMs, maxReplicationLagMs: controls.maxReplicationLagMs, brakePauseMs: controls.brakePauseMs },
      };
    },
    { description: DESCRIPTIONS.controls },
  );
  setHandler(
    progressSignal,
    (p) => {
      const progress = state.progress[p.table];
      if (!progress) return;
      streamProgress.set(`${p.table}/${p.stream}`, { rows: p.rowsCopied, rate: p.done ? 0 : p.rowsPerSec, brakes: p.brakes ?? 0, brake: p.brake ?? null });
      if (p.done) streamsDone.add(`${p.table}/${p.stream}`);
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
      refresh();
    },
    { description: DESCRIPTIONS.progress },
  );

  searchAttributes = await acts.capabilities
    .executeWithOptions(opts(`start ${names.join(', ')}: worker capabilities (search attributes)`, shortOpts), [])
    .then((c) => c.searchAttributes);
  if (searchAttributes) {
    upsertSearchAttributes([
      { key: SwitchoverTables, value: names },
      { key: SwitchoverPhase, value: 'preflight' },
    ]);
  }
  refresh();

  if (input.mode === 'cleanup') return cleanup(input, state, setPhase, phaseMs);

  const plan = await acts.preflight.executeWithOptions(
    opts(`preflight ${names.join(', ')}: catalog checks and plan${input.dryRun ? ' (dry run)' : ''}`, shortOpts),
    [input],
  ).catch((err) => {
    state.error = errorMessage(err);
    setPhase('failed');
    throw ownFailure(err);
  });
  state.plan = plan;
  for (const tp of plan.tables) {
    reports.set(tp.table, { table: tp.table, partitionsCreated: 0, stages: [], copy: { rows: 0, ms: 0, streams: [] } });
  }
  const report = (outcome: SwitchoverReport['outcome'], extra: Partial<SwitchoverReport> = {}): SwitchoverReport => ({
    workflowId: info.workflowId,
    outcome,
    database: input.database,
    schema: input.schema,
    tables: [...reports.values()],
    approval: state.approval,
    phaseMs,
    ...extra,
  });
  if (input.dryRun) {
    setPhase('done');
    return report('dry_run', { plan });
  }

  const record = (r: StageRecord) => {
    state.stages.push(r);
    reports.get(r.table)!.stages.push(r);
  };
  const db = input.database;
  let sideEffects = false;
  /** claimTables was started: from here on a cancelled run has something to roll back. */
  let claiming = false;
  /** approval.onTimeout "fail": stop with everything left in place, as the failure message says. */
  let leaveInPlace = false;
  /** While paused, no next stage starts (a condition already true adds nothing to the history). */
  const unpaused = () => condition(() => !controls.paused);
  try {
    await stages.run(async () => {
      await acts.ensureState.executeWithOptions(opts(`state ${names.join(', ')}: bookkeeping schema partition_switchover in database ${db}`, shortOpts), [db]);
      claiming = true;
      await acts.claimTables.executeWithOptions(opts(`claim ${names.join(', ')}: one switchover per table, plans recorded`, shortOpts), [db, plan.tables]);
      sideEffects = true;
      await unpaused();
      for (const tp of plan.tables) {
        record(await longActs.recordChecksum.executeWithOptions(opts(`checksum ${tp.table}: PRE-FLIGHT rows, sums and row hash`, longOpts), [db, tp, 'PRE-FLIGHT', tp.table]));
      }

      if (input.backup === 'table') {
        await unpaused();
        setPhase('backup');
        for (const tp of plan.tables) {
          record(await longActs.backupTable.executeWithOptions(opts(`backup ${tp.table} → ${tp.names.backup}`, longOpts), [db, tp]));
        }
      }

      await unpaused();
      setPhase('prepare');
      for (const tp of plan.tables) {
        const first = tp.partitions[0];
        const last = tp.partitions[tp.partitions.length - 1];
        const r = await longActs.prepareTable.executeWithOptions(
          opts(`prepare ${tp.table}: ${tp.names.partitioned} with ${tp.partitions.length} ${tp.interval} partitions ${first.from}..${last.to}`, longOpts),
          [db, tp],
        );
        reports.get(tp.table)!.partitionsCreated = r.partitions;
      }

      await unpaused();
      setPhase('triggers');
      for (const tp of plan.tables) {
        await acts.installTriggers.executeWithOptions(opts(`triggers ${tp.table}: dual-write to ${tp.names.partitioned}`, shortOpts), [db, tp]);
      }

      await unpaused();
      setPhase('copy');
      for (const tp of plan.tables) {
        state.progress[tp.table] = { table: tp.table, rowsCopied: 0, rowsEstimated: tp.rowsEstimated, rowsPerSec: 0, etaSeconds: null };
      }
      refresh();
      for (const tp of plan.tables) {
        await unpaused();
        const t0 = Date.now();
        // The live settings (retune applies to the next table; the copy reads them before each batch too).
        const streams = copyStreamsFor(tp, controls.parallelism);
        copyStreams.set(tp.table, streams.length);
        const runs = streams.map((s) =>
          longActs.copyRange
            .executeWithOptions(opts(`copy ${tp.table} ${streamRange(tp, s)} (stream ${s.stream + 1}/${streams.length})`, longOpts), [
              db,
              tp,
              s,
              {
                batchSize: controls.batchSize,
                pauseMs: controls.pauseMs,
                estimatedRows: Math.ceil(tp.rowsEstimated / streams.length),
                mode: input.copyMode,
                brake: { maxBatchMs: controls.maxBatchMs, maxLockWaitMs: controls.maxLockWaitMs, maxReplicationLagMs: controls.maxReplicationLagMs, brakePauseMs: controls.brakePauseMs },
              },
            ])
            .then((r) => {
              streamsDone.add(`${tp.table}/${s.stream}`);
              return r;
            }),
        );
        const results = await Promise.all(runs).catch(async (err) => {
          // Cancelled: the rollback starts only once every stream has stopped.
          if (isCancellation(err)) await Promise.allSettled(runs);
          throw err;
        });
        const rows = results.reduce((a, r) => a + r.rowsCopied, 0);
        reports.get(tp.table)!.copy = { rows, ms: Date.now() - t0, streams: results };
        // Mode "recheck": repair what the lock-free copy got wrong against racing writers.
        if (input.copyMode === 'recheck') {
          await unpaused();
          reports.get(tp.table)!.copy.recheck = await longActs.copyRecheck.executeWithOptions(
            opts(`copy ${tp.table}: re-check by hash per key range, repair differing rows under row lock`, longOpts),
            [db, tp, {}],
          );
        }
        await unpaused();
        reports.get(tp.table)!.copy.indexes = await longActs.buildIndexes.executeWithOptions(
          opts(`index ${tp.table}: secondary indexes per partition concurrently, foreign keys validated per partition, then attached`, longOpts),
          [db, tp, { parallelism: controls.parallelism, lockTimeoutMs: input.lockTimeoutMs }],
        );
        const p = state.progress[tp.table];
        p.rowsCopied = rows;
        p.rowsPerSec = 0;
        p.etaSeconds = 0;
        refresh();
      }

      await unpaused();
      setPhase('verify');
      const verification: TableVerification[] = [];
      for (const tp of plan.tables) {
        const v = await longActs.verifyTable.executeWithOptions(
          opts(`verify ${tp.table}: counts, sums and row hashes per ${tp.interval}`, longOpts),
          [db, tp],
        );
        verification.push(v);
        reports.get(tp.table)!.verification = v;
        record({ stage: 'PRE-MIGRATION', table: tp.table, rows: v.legacy.rows, sums: v.legacy.sums, rowHash: v.legacy.rowHash, ms: v.ms, at: new Date().toISOString() });
        record({ stage: 'POST-MIGRATION', table: tp.table, rows: v.partitioned.rows, sums: v.partitioned.sums, rowHash: v.partitioned.rowHash, ms: v.ms, at: new Date().toISOString() });
      }
      state.verification = { ok: verification.every((v) => v.ok), tables: verification };
      refresh();
      const bad = verification.filter((v) => !v.ok);
      if (bad.length) {
        throw ApplicationFailure.create({
          type: 'ParityMismatch',
          message:
            `verification failed: ${bad.map((v) => `${v.table} differs in ${v.mismatches.map((m) => m.range).join(', ')} (ids ${v.sampleIds.join(', ')})`).join('; ')}. ` +
            `The legacy table is untouched and authoritative; compare those rows, then start again.`,
          nonRetryable: true,
          details: [{ stage: 'verify', tables: bad.map((v) => ({ table: v.table, ranges: v.mismatches.map((m) => m.range), sampleIds: v.sampleIds })) }],
        });
      }
    });

    if (input.approval.required) {
      if (!decision) state.approval = { state: 'waiting', since: new Date().toISOString(), approvers: input.approval.approvers };
      setPhase('awaiting_approval');
      const decided = await condition(() => decision !== undefined, durationMs(input.approval.timeout));
      if (!decided) {
        state.approval = { state: 'timed_out', at: new Date().toISOString() };
        if (input.approval.onTimeout === 'fail') {
          leaveInPlace = true;
          setPhase('failed');
          throw ApplicationFailure.create({
            type: 'ApprovalTimedOut',
            message:
              `nobody approved within ${input.approval.timeout}; the switchover stopped before cutover. The dual-write triggers and ` +
              `${plan.tables.map((t) => t.names.partitioned).join(', ')} are still in place: run the rollback workflow ` +
              `(--type rollback --input '{"switchoverWorkflowId":"${info.workflowId}"}') to remove them.`,
            nonRetryable: true,
          });
        }
        const rb = await compensate(input, state, setPhase, 'approval timed out');
        return report('timed_out', { rollback: rb });
      }
      await acts.recordEvent.executeWithOptions(opts(`audit ${names.join(', ')}: ${decision} by ${(state.approval as { by?: string }).by}`, shortOpts), [
        db,
        input.schema,
        names[0],
        'APPROVAL',
        { ...state.approval },
      ]);
    }
    if (decision === 'rejected') {
      const rb = await compensate(input, state, setPhase, 'rejected');
      return report('rejected', { rollback: rb });
    }

    await unpaused();
    setPhase('cutover');
    for (const tp of plan.tables) {
      const c = await acts.cutoverTable.executeWithOptions(
        opts(`cutover ${tp.table}: rename to ${tp.names.legacy}, ${tp.names.partitioned} → ${tp.table}, mirror on`, cutoverOpts),
        [db, tp, input.lockTimeoutMs],
      );
      state.cutover[tp.table] = c;
      reports.get(tp.table)!.cutover = c;
    }
    setPhase('done');
    return report('done');
  } catch (err) {
    if (decision === 'rejected' && stages.consideredCancelled && !CancellationScope.current().consideredCancelled) {
      // A reject while a stage ran: that stage stopped (or failed on its way out); roll back as a
      // reject at the approval point does.
      if (input.approval.required) {
        await acts.recordEvent.executeWithOptions(opts(`audit ${names.join(', ')}: rejected by ${(state.approval as { by?: string }).by}`, shortOpts), [
          db,
          input.schema,
          names[0],
          'APPROVAL',
          { ...state.approval, phase: state.phase },
        ]);
      }
      const rb = await compensate(input, state, setPhase, `rejected in ${state.phase}`);
      return report('rejected', { rollback: rb });
    }
    state.error = errorMessage(err);
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
      // The workflow was cancelled (UI, `temporal workflow cancel`): the running stage stopped;
      // roll back what was done, then end Canceled.
      state.error = 'workflow cancelled';
      if (claiming && !leaveInPlace) await compensate(input, state, setPhase, `workflow cancelled in ${state.phase}`);
      else setPhase('failed');
      throw err;
    }
    if (!sideEffects || leaveInPlace) {
      setPhase('failed');
      throw ownFailure(err);
    }
    const rb = await compensate(input, state, setPhase, `failed in ${state.phase}`);
    const outcome = rb.ok ? `rollback ${rb.workflowId} completed: ${rb.tables.map((t) => `${t.table} back to plain (was ${t.from})`).join(', ')}` : `rollback ${rb.workflowId} FAILED: ${rb.error}`;
    setPhase('failed');
    throw ApplicationFailure.create({
      type: errorType(err) ?? 'SwitchoverFailed',
      message: `${state.error.replace(/\.+$/, '')}. ${outcome}.`,
      nonRetryable: true,
      cause: err as Error,
      details: [{ rollback: rb }],
    });
  }
}

/** Runs the rollback workflow as a child that outlives this one, even if this one is cancelled. */
async function compensate(
  input: SwitchoverInput,
  state: SwitchoverStatus,
  setPhase: (p: Phase) => void,
  why: string,
): Promise<RollbackOutcome> {
  const info = workflowInfo();
  const workflowId = `${info.workflowId}-rollback`;
  state.rollback = { workflowId, state: 'running', message: why };
  setPhase('rolling_back');
  return CancellationScope.nonCancellable(async () => {
    try {
      const r: RollbackReport = await executeChild('rollback', {
        args: [{ switchoverWorkflowId: info.workflowId, database: input.database, schema: input.schema }],
        workflowId,
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      state.rollback = { workflowId, state: 'completed', message: why };
      setPhase('rolled_back');
      return { ...r, workflowId, ok: true };
    } catch (err) {
      state.rollback = { workflowId, state: 'failed', message: errorMessage(err) };
      return { tables: [], nothingToDo: [], workflowId, ok: false, error: errorMessage(err) };
    }
  });
}

async function cleanup(
  input: SwitchoverInput,
  state: SwitchoverStatus,
  setPhase: (p: Phase) => void,
  phaseMs: Record<string, number>,
): Promise<SwitchoverReport> {
  setPhase('cleanup');
  const names = input.tables.map((t) => t.table);
  const plans: TablePlan[] = await acts.loadPlans.executeWithOptions(opts(`cleanup ${names.join(', ')}: load recorded plans`, shortOpts), [
    input.database,
    input.schema,
    { tables: names },
  ]);
  const missing = names.filter((n) => !plans.some((p) => p.table === n));
  if (missing.length) {
    setPhase('failed');
    throw ApplicationFailure.create({
      type: 'StateConflict',
      message: `cleanup: no switchover is recorded for ${missing.join(', ')} in database "${input.database}"; nothing was changed.`,
      nonRetryable: true,
    });
  }
  for (const tp of plans) {
    await acts.cleanupTable.executeWithOptions(opts(`cleanup ${tp.table}: drop mirror, ${tp.names.legacy}, ${tp.names.backup}`, shortOpts), [
      input.database,
      tp,
    ]);
  }
  await acts.releaseClaims.executeWithOptions(opts(`cleanup ${names.join(', ')}: release claims`, shortOpts), [input.database, input.schema, names]);
  setPhase('done');
  return {
    workflowId: workflowInfo().workflowId,
    outcome: 'cleaned',
    database: input.database,
    schema: input.schema,
    tables: plans.map((tp) => ({ table: tp.table, partitionsCreated: 0, stages: [], copy: { rows: 0, ms: 0, streams: [] } })),
    approval: state.approval,
    phaseMs,
  };
}
