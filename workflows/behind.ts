// Work that runs on while approval waits (the copy strategy's statistics): started by a stage,
// settled before the cutover or the rollback, its failure ending the wait. Deterministic workflow
// code: no I/O.
import type { Run } from './control';

/** Starts `work` to run on while approval waits; its failure ends the wait (the strategy's awaitDecision looks at `run.behind.error`). */
export function behindApproval(run: Run, work: Promise<unknown>): void {
  run.behind.pending.push(
    work.then(
      () => undefined,
      (err) => void (run.behind.error ??= err),
    ),
  );
}

/** Waits for everything started behind the approval; `rethrow`: then throws its first failure. */
export async function settleBehind(run: Run, rethrow: boolean): Promise<void> {
  await Promise.all(run.behind.pending);
  if (rethrow && run.behind.error !== undefined) throw run.behind.error;
}
