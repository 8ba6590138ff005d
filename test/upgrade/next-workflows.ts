// The "next release" of the workflow code that test/upgrade.test.ts deploys over a running
// switchover: switchover gains a new first step, guarded by patched() so that runs started by
// the previous release replay exactly as they were recorded. rollback is unchanged.
import { patched } from '@temporalio/workflow';
import { switchover as current } from '../../workflows/switchover';
import { NEW_STEP_PATCH, newStep } from './new-step';

export { rollback } from '../../workflows/rollback';

export async function switchover(raw: unknown): ReturnType<typeof current> {
  if (patched(NEW_STEP_PATCH)) await newStep();
  return current(raw);
}
