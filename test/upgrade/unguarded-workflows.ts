// The same change as next-workflows.ts without patched(): what the upgrade test shows breaks
// a switchover that started on the previous release.
import { switchover as current } from '../../workflows/switchover';
import { newStep } from './new-step';

export { rollback } from '../../workflows/rollback';

export async function switchover(raw: unknown): ReturnType<typeof current> {
  await newStep();
  return current(raw);
}
