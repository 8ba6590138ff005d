// Every activity, built around the worker's dependencies (pools). Workflows import only the type.
import type { Deps } from './context';
import { copyActivities } from './copy';
import { indexActivities } from './indexes';
import { recheckActivities } from './recheck';
import { cutoverActivities } from './cutover';
import { partitionActivities } from './partitions';
import { prepareActivities } from './prepare';
import { preflightActivities } from './preflight';
import { rehearsalActivities } from './rehearsal';
import { stateActivities } from './state';
import { verifyActivities } from './verify';

export function createActivities(deps: Deps & { searchAttributes?: boolean }) {
  return {
    /** What this worker's Temporal server supports (checked once at worker start). */
    async capabilities(): Promise<{ searchAttributes: boolean }> {
      return { searchAttributes: !!deps.searchAttributes };
    },
    ...preflightActivities(deps),
    ...stateActivities(deps),
    ...prepareActivities(deps),
    ...copyActivities(deps),
    ...recheckActivities(deps),
    ...indexActivities(deps),
    ...verifyActivities(deps),
    ...cutoverActivities(deps),
    ...partitionActivities(deps),
    ...rehearsalActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
