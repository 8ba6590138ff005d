// The step the next release adds: one more activity before the switchover's first one, with a
// summary that makes it easy to find in a history.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';

export const NEW_STEP_PATCH = 'switchover-check-capabilities-first';
export const NEW_STEP_SUMMARY = 'new step: check the worker capabilities first';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '1 minute' });

export async function newStep(): Promise<void> {
  await acts.capabilities.executeWithOptions({ startToCloseTimeout: '1 minute', summary: NEW_STEP_SUMMARY }, []);
}
