// The names of every trigger a switchover puts on the application's table or its partitioned
// copy: what reads "the application's triggers" (carry, the cutover's re-check, verification's
// check for a trigger behind the copy) leaves out exactly these.
import { KEY_TRIGGERS } from './keytablesql';
import { RESTORE_TRIGGER } from './restoresql';
import { DIRECT_WRITE_TRIGGER, TRUNCATE_GUARD_TRIGGER } from './sqlgen';
import type { TableNames } from './types';

export function ourTriggers(names: Pick<TableNames, 'syncTrigger' | 'mirrorTrigger'>): string[] {
  return [names.syncTrigger, names.mirrorTrigger, DIRECT_WRITE_TRIGGER, TRUNCATE_GUARD_TRIGGER, RESTORE_TRIGGER, ...Object.values(KEY_TRIGGERS)];
}
