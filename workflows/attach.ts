// The attach strategy's stages (activities/attach.ts), as the switchover runs them in place of
// prepare → triggers → copy → verify and of the copy's cutover: the two unique indexes built
// concurrently and the CHECK validated (phase "prepare"), counts and bounds (phase "verify"), then
// the cutover. Deterministic workflow code: no I/O.
import { ApplicationFailure, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Plan } from '../src/types';
import type { Run } from './control';
import { opts, shortOpts, unpausedBeforeCutoff } from './stages';

const longOpts: ActivityOptions = { ...shortOpts, startToCloseTimeout: '24 hours' };
const cutoverOpts: ActivityOptions = {
  ...shortOpts,
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 20 },
};
const acts = proxyActivities<Activities>(shortOpts);

/** Per table: the unique indexes on (primary key..., key) and on the primary key CONCURRENTLY, the empty parent with the new partitions, then the CHECK NOT VALID and VALIDATE. */
export async function prepareAttach(run: Run, plan: Plan) {
  await unpausedBeforeCutoff(run, plan);
  run.setPhase('prepare');
  for (const tp of plan.tables) {
    const a = tp.attach!;
    await unpausedBeforeCutoff(run, plan);
    await acts.attachIndexes.executeWithOptions(
      opts(`index ${tp.table}: unique (${tp.partitionedKey.join(', ')}) and unique (${tp.primaryKey.join(', ')}) concurrently`, longOpts),
      [run.input.database, tp],
    );
    await unpausedBeforeCutoff(run, plan);
    await acts.attachParent.executeWithOptions(
      opts(`prepare ${tp.table}: ${tp.names.partitioned} with ${a.partitions.length} ${tp.interval} partitions from ${a.cutoff}`),
      [run.input.database, tp, run.input.lockTimeoutMs],
    );
    await unpausedBeforeCutoff(run, plan);
    await acts.attachCheck.executeWithOptions(opts(`check ${tp.table}: ${tp.partitionKey} < ${a.cutoff} NOT VALID, then VALIDATE`, longOpts), [
      run.input.database,
      tp,
      run.input.lockTimeoutMs,
    ]);
  }
}

/** Counts and bounds: no row outside FROM (MINVALUE) TO (cutoff), the CHECK and the indexes valid; anything else fails and rolls back. */
export async function verifyAttach(run: Run, plan: Plan) {
  await unpausedBeforeCutoff(run, plan);
  run.setPhase('verify');
  const bad: string[] = [];
  for (const tp of plan.tables) {
    const v = await acts.attachVerify.executeWithOptions(opts(`verify ${tp.table}: rows before ${tp.attach!.cutoff}, CHECK and indexes valid`, longOpts), [run.input.database, tp]);
    run.record({ stage: 'ATTACH-VERIFY', table: tp.table, rows: v.rows, sums: {}, ms: v.ms, at: new Date().toISOString() });
    if (!v.ok) bad.push(`${tp.table}: ${v.problems.join('; ')}`);
  }
  run.refresh();
  if (bad.length) {
    throw ApplicationFailure.create({
      type: 'ParityMismatch',
      message: `verification failed: ${bad.join('. ')}. The table is unchanged but for our CHECK and indexes, which the rollback drops; start again.`,
      nonRetryable: true,
    });
  }
}

/** One short transaction per table under lock_timeout, retried with backoff: the table becomes the history partition. */
export async function cutoverAttach(run: Run, plan: Plan) {
  await unpausedBeforeCutoff(run, plan);
  run.setPhase('cutover');
  for (const tp of plan.tables) {
    const c = await acts.attachCutover.executeWithOptions(
      opts(`cutover ${tp.table}: attach as ${tp.attach!.history} FROM (MINVALUE) TO (${tp.attach!.cutoff}), ${tp.attach!.partitions.length} new partitions`, cutoverOpts),
      [run.input.database, tp, run.input.lockTimeoutMs],
    );
    run.state.cutover[tp.table] = c;
    run.table(tp.table).cutover = c;
  }
}
