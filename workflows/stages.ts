// The stages every strategy shares, in runbook order: announce, preflight, claim, the PRE-FLIGHT
// checksums, backup; and how one strategy stage runs (runStage). Each schedules its activities
// (activities/<stage>.ts) table by table and records what they report. Deterministic workflow
// code: no I/O.
import { proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CutoverResult, Plan, TablePlan } from '../src/types';
import type { Phase } from '../src/status';
import { SwitchoverPhase, SwitchoverTables } from '../src/shared';
import type { Run, Tracked } from './control';
import { LONG, STEP, opts } from './options';
import { errorMessage, ownFailure } from './util';

export const acts = proxyActivities<Activities>(STEP);

/**
 * One stage of a strategy, as pgroll has an operation: its forward step for one table, and what
 * must hold once every table took it. Its undo is the strategy's in activities/rollback-table.ts, which
 * reads from the database which stages ran.
 */
export interface Stage<R = unknown> {
  phase: Phase;
  /** Before the stage and each table: the operator's pause (attach: never past its cutoff's deadline). */
  wait?(run: Run, plan: Plan): Promise<void>;
  /** Before the first table. */
  start?(run: Run, plan: Plan): void;
  /** The forward step for one table. */
  forward(run: Run, tp: TablePlan, plan: Plan): Promise<R>;
  /** After every table: fails the switchover (which then rolls back) if what must hold does not. */
  check?(run: Run, plan: Plan, results: R[]): void;
}

/** Runs a stage: waits while paused, enters its phase, then its forward step table by table and its check. */
export async function runStage<R>(run: Run, plan: Plan, stage: Stage<R>): Promise<void> {
  const wait = () => (stage.wait ? stage.wait(run, plan) : run.unpaused());
  await wait();
  run.setPhase(stage.phase);
  stage.start?.(run, plan);
  const results: R[] = [];
  for (const tp of plan.tables) {
    await wait();
    results.push(await stage.forward(run, tp, plan));
  }
  stage.check?.(run, plan, results);
}

/** Search attributes, when the worker's server has them. */
export async function announce(run: Tracked) {
  run.searchAttributes = await acts.capabilities
    .executeWithOptions(opts(`start ${run.names.join(', ')}: worker capabilities (search attributes)`), [])
    .then((c) => c.searchAttributes);
  if (run.searchAttributes) {
    upsertSearchAttributes([
      { key: SwitchoverTables, value: run.names },
      { key: SwitchoverPhase, value: run.state.phase },
    ]);
  }
  run.refresh();
}

/** Catalog checks and the plan; a refusal fails the workflow with nothing changed. */
export async function preflight(run: Run): Promise<Plan> {
  const { input, names } = run;
  const plan = await acts.preflight
    .executeWithOptions(opts(`preflight ${names.join(', ')}: catalog checks and plan${input.dryRun ? ' (dry run)' : ''}`), [input])
    .catch((err) => {
      run.state.error = errorMessage(err);
      run.setPhase('failed');
      throw ownFailure(err);
    });
  run.state.plan = plan;
  for (const tp of plan.tables) run.table(tp.table);
  return plan;
}

/** The bookkeeping schema, then one switchover per table (plans recorded). */
export async function claim(run: Run, plan: Plan) {
  const { names, input } = run;
  await acts.ensureState.executeWithOptions(opts(`state ${names.join(', ')}: bookkeeping schema partition_switchover in database ${input.database}`), [
    input.database,
  ]);
  run.undo = 'claim';
  await acts.claimTables.executeWithOptions(opts(`claim ${names.join(', ')}: one switchover per table, plans recorded`), [input.database, plan.tables]);
  run.undo = 'rollback';
}

/** The PRE-FLIGHT checksums: rows, sums and row hash of each table before anything else. */
export async function checksums(run: Run, plan: Plan) {
  await run.unpaused();
  for (const tp of plan.tables) {
    run.record(
      await acts.recordChecksum.executeWithOptions(opts(`checksum ${tp.table}: PRE-FLIGHT rows, sums and row hash`, LONG), [
        run.input.database,
        tp,
        'PRE-FLIGHT',
        tp.table,
      ]),
    );
  }
}

/** A table's cutover as its strategy's cutover stage reports it: in the status and the table's report. */
export function cutOver(run: Run, table: string, c: CutoverResult): void {
  run.state.cutover[table] = c;
  run.table(table).cutover = c;
}

/** `<table>_backup`, a full copy of each table (input.backup "table"). */
export const backup: Stage = {
  phase: 'backup',
  async forward(run, tp) {
    run.record(await acts.backupTable.executeWithOptions(opts(`backup ${tp.table} → ${tp.names.backup}`, LONG), [run.input.database, tp]));
  },
};
