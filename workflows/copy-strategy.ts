// The copy strategy's stages (the default): `<table>_partitioned` with its partitions, the
// dual-write triggers, the copy with its re-check and index builds, the verification, and the
// cutover that swaps the names; while approval waits, the rows written meanwhile are compared.
// Deterministic workflow code: no I/O.
import { ApplicationFailure, condition, isCancellation, patched } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CopyStream, Plan, TablePlan, TableVerification } from '../src/types';
import { brakeOf, type Run } from './control';
import { LONG, cutoverOptions, opts } from './options';
import { acts, cutOver, type Stage } from './stages';
import { copyStreamsFor, durationMs, errorMessage } from './util';
import { behindApproval } from './behind';

/** A copy stream's key range for its summary, inclusive: `id 1..500`, the last open-ended `id 501..1000+`. */
function streamRange(tp: TablePlan, s: CopyStream): string {
  if (!tp.splitColumn || !tp.splitRange) return 'all rows';
  const lo = s.lo ?? tp.splitRange.min;
  const hi = s.hi !== null ? String(BigInt(s.hi) - 1n) : `${tp.splitRange.max}+`;
  return `${tp.splitColumn} ${lo}..${hi}`;
}

/** `<table>_partitioned` with its partitions, keys, grants and policies. */
export const prepare: Stage = {
  phase: 'prepare',
  async forward(run, tp) {
    const first = tp.partitions[0];
    const last = tp.partitions[tp.partitions.length - 1];
    const r = await acts.prepareTable.executeWithOptions(
      opts(`prepare ${tp.table}: ${tp.names.partitioned} with ${tp.partitions.length} ${tp.interval} partitions ${first.from}..${last.to}`, LONG),
      [run.input.database, tp],
    );
    run.table(tp.table).partitionsCreated = r.partitions;
  },
};

/** The dual-write trigger from the table to `<table>_partitioned`. */
export const triggers: Stage = {
  phase: 'triggers',
  async forward(run, tp) {
    await acts.installTriggers.executeWithOptions(opts(`triggers ${tp.table}: dual-write to ${tp.names.partitioned}`), [run.input.database, tp]);
  },
};

/** Per table: the copy streams in parallel, the re-check (mode "recheck"), then the secondary indexes and foreign keys. */
export const copy: Stage = {
  phase: 'copy',
  start(run, plan) {
    for (const tp of plan.tables) {
      run.state.progress[tp.table] = { table: tp.table, rowsCopied: 0, rowsEstimated: tp.rowsEstimated, rowsPerSec: 0, etaSeconds: null };
    }
    run.refresh();
  },
  forward: copyTable,
};

async function copyTable(run: Run, tp: TablePlan) {
  const { input, controls } = run;
  const db = input.database;
  const t0 = Date.now();
  // The live settings (retune applies to the next table; the copy reads them before each batch too).
  const streams = copyStreamsFor(tp, controls.parallelism);
  run.copyStreams.set(tp.table, streams.length);
  const runs = streams.map((s) =>
    acts.copyRange
      .executeWithOptions(opts(`copy ${tp.table} ${streamRange(tp, s)} (stream ${s.stream + 1}/${streams.length})`, LONG), [
        db,
        tp,
        s,
        {
          batchSize: controls.batchSize,
          pauseMs: controls.pauseMs,
          estimatedRows: Math.ceil(tp.rowsEstimated / streams.length),
          mode: input.copyMode,
          brake: brakeOf(controls),
        },
      ])
      .then((r) => {
        run.streamsDone.add(`${tp.table}/${s.stream}`);
        return r;
      }),
  );
  const results = await Promise.all(runs).catch(async (err) => {
    // Cancelled: the rollback starts only once every stream has stopped.
    if (isCancellation(err)) await Promise.allSettled(runs);
    throw err;
  });
  const rows = results.reduce((a, r) => a + r.rowsCopied, 0);
  const report = run.table(tp.table);
  report.copy = { rows, ms: Date.now() - t0, streams: results };
  // Mode "recheck": repair what the lock-free copy got wrong against racing writers.
  if (input.copyMode === 'recheck') {
    await run.unpaused();
    report.copy.recheck = await acts.copyRecheck.executeWithOptions(
      opts(`copy ${tp.table}: re-check by hash per key range, repair differing rows under row lock`, LONG),
      [db, tp, {}],
    );
  }
  await run.unpaused();
  report.copy.indexes = await acts.buildIndexes.executeWithOptions(
    opts(`index ${tp.table}: secondary indexes per partition concurrently, foreign keys validated per partition, then attached`, LONG),
    [db, tp, { parallelism: controls.parallelism, lockTimeoutMs: input.lockTimeoutMs, adaptive: controls.adaptive }],
  );
  Object.assign(run.state.progress[tp.table], { rowsCopied: rows, rowsPerSec: 0, etaSeconds: 0 });
  run.refresh();
}

/** Counts, sums and row hashes per partition range (or the rows written, incremental); any difference fails (ParityMismatch) and rolls back. */
export const verify: Stage<TableVerification> = {
  phase: 'verify',
  async forward(run, tp) {
    const incremental = run.input.verify === 'incremental' && tp.changeLog === true;
    const what = incremental ? 'row counts, and every row written during the switchover compared row by row' : `counts, sums and row hashes per ${tp.interval}`;
    // Statistics are their own activity since the verification became incremental (a switchover
    // started before that analyzes inside verifyTable, as its history recorded).
    const apart = patched('analyze-apart');
    const args: Parameters<Activities['verifyTable']> = apart ? [run.input.database, tp, { mode: run.input.verify, analyze: false }] : [run.input.database, tp];
    const v = await acts.verifyTable.executeWithOptions(opts(`verify ${tp.table}: ${what}`, LONG), args);
    if (apart) {
      // Since issue 23 they run on while approval waits (the operator reads the verification
      // meanwhile); the cutover waits for them. Runs started before that gathered them here.
      const analyzing = acts.analyzeTable.executeWithOptions(
        opts(`analyze ${tp.table}: statistics of ${tp.names.partitioned} for the first queries after cutover`, LONG),
        [run.input.database, tp, { parallelism: run.controls.parallelism }],
      );
      if (patched('statistics-behind-approval')) statisticsBehind(run, tp.table, analyzing);
      else await analyzing;
    }
    run.table(tp.table).verification = v;
    run.record({
      stage: 'PRE-MIGRATION',
      table: tp.table,
      rows: v.legacy.rows,
      sums: v.legacy.sums,
      rowHash: v.legacy.rowHash,
      ms: v.ms,
      at: new Date().toISOString(),
    });
    run.record({
      stage: 'POST-MIGRATION',
      table: tp.table,
      rows: v.partitioned.rows,
      sums: v.partitioned.sums,
      rowHash: v.partitioned.rowHash,
      ms: v.ms,
      at: new Date().toISOString(),
    });
    return v;
  },
  check(run, _plan, verification) {
    run.state.verification = { ok: verification.every((v) => v.ok), tables: verification };
    run.refresh();
    const bad = verification.filter((v) => !v.ok);
    if (!bad.length) return;
    const differs = (v: TableVerification) =>
      `${v.table} differs in ${v.mismatches.map((m) => m.range).join(', ')}${v.sampleIds.length ? ` (ids ${v.sampleIds.join(', ')})` : ''}${v.escalated ? ` (every row compared: ${v.escalated.join('; ')})` : ''}`;
    throw ApplicationFailure.create({
      type: 'ParityMismatch',
      message: `verification failed: ${bad.map(differs).join('; ')}. The legacy table is untouched and authoritative; compare those rows, then start again.`,
      nonRetryable: true,
      details: [{ stage: 'verify', tables: bad.map((v) => ({ table: v.table, ranges: v.mismatches.map((m) => m.range), sampleIds: v.sampleIds })) }],
    });
  },
};

/** A table's statistics gathered behind the approval (workflows/approval.ts), as status.statistics tells. */
function statisticsBehind(run: Run, table: string, analyzing: Promise<{ skipped: string | null }>): void {
  const said = (what: string) => {
    (run.state.statistics ??= {})[table] = what;
    run.refresh();
  };
  said('gathering');
  behindApproval(
    run,
    analyzing.then(
      (a) => said(a.skipped ? `skipped: ${a.skipped}` : 'done'),
      (err) => {
        said(`failed: ${errorMessage(err)}`);
        throw err;
      },
    ),
  );
}

/** One short transaction per table under lock_timeout: the renames, the mirror trigger back to `<table>_legacy`. */
export const cutover: Stage = {
  phase: 'cutover',
  async forward(run, tp) {
    const summary = `cutover ${tp.table}: rename to ${tp.names.legacy}, ${tp.names.partitioned} → ${tp.table}, mirror on`;
    cutOver(
      run,
      tp.table,
      await acts.cutoverTable.executeWithOptions(opts(summary, cutoverOptions(run.window.deadline)), [
        run.input.database,
        tp,
        run.input.lockTimeoutMs,
        run.input.cutover,
      ]),
    );
  },
};

/**
 * Waits up to `timeoutMs` for a decision; every approval.verifyEvery meanwhile, compares the rows
 * written since the last comparison (plans with the change log) and forgets their log entries.
 * A difference fails the switchover at once (it rolls back), as verification does. Runs recorded
 * before this comparison wait in one piece.
 */
export async function awaitDecision(run: Run, plan: Plan, timeoutMs: number): Promise<boolean> {
  // Or what runs on behind the approval failed (approval() then fails the switchover).
  const ended = () => run.decision !== undefined || run.behind.error !== undefined;
  if (!patched('verify-written-while-waiting')) return condition(ended, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  const every = durationMs(run.input.approval.verifyEvery);
  const logged = plan.tables.filter((tp) => tp.changeLog);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    if (await condition(ended, logged.length ? Math.min(left, every) : left)) return true;
    if (deadline - Date.now() <= 0) return false;
    for (const tp of logged) await compareWritten(run, tp);
  }
}

async function compareWritten(run: Run, tp: TablePlan) {
  const w = await acts.verifyWritten.executeWithOptions(opts(`verify ${tp.table}: rows written since the last comparison, while approval waits`), [
    run.input.database,
    tp,
    run.input.lockTimeoutMs,
  ]);
  run.state.written = { ...run.state.written, [tp.table]: w };
  run.refresh();
  if (w.ok) return;
  throw ApplicationFailure.create({
    type: 'ParityMismatch',
    message: `verification failed while waiting for approval: ${tp.table}: ${w.changes.join('; ')}. The legacy table is untouched and authoritative; compare those rows, then start again.`,
    nonRetryable: true,
    details: [{ stage: 'verify', table: tp.table, changes: w.changes }],
  });
}

/** What stays in place when nobody approved in time and approval.onTimeout is "fail". */
export function leftInPlace(plan: Plan): string {
  return `The dual-write triggers and ${plan.tables.map((t) => t.names.partitioned).join(', ')} are still in place`;
}
