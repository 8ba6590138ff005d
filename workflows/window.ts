// The cutover window (input cutover.window / cutover.notBefore): an approval given outside it is
// kept and the cutover waits for the window on a durable timer; inside it, the cutover tries until
// the window closes, then waits for the next one. The `retuneCutover` Update changes the window
// while the cutover waits, `cutoverNow` (an approver) overrides it, and a reject is still honoured
// while it waits. Deterministic workflow code: no I/O (time zones through Intl, src/windows.ts).
import { ActivityFailure, TimeoutFailure, condition, setHandler } from '@temporalio/workflow';
import { cutoverSpec, cutoverWindowSpec, describeIssues } from '../src/input';
import { DESCRIPTIONS, cutoverNowUpdate, retuneCutoverUpdate } from '../src/shared';
import type { CutoverWindowState } from '../src/status';
import type { Plan } from '../src/types';
import { cutoverSlot, localTime, type Slot } from '../src/windows';
import type { Run, WindowControl } from './control';
import { runStage } from './stages';
import type { Strategy } from './strategies';

function describe(w: WindowControl, slot: Slot | null, state: CutoverWindowState['state'], old?: CutoverWindowState): CutoverWindowState {
  const tz = w.window?.timeZone ?? 'UTC';
  const open = slot?.open ?? Date.now();
  const close = slot && Number.isFinite(slot.close) ? slot.close : null;
  return {
    state,
    opensAt: new Date(open).toISOString(),
    opensLocal: localTime(open, tz),
    closesAt: close === null ? null : new Date(close).toISOString(),
    closesLocal: close === null ? null : localTime(close, tz),
    window: w.window,
    notBefore: w.notBefore,
    missed: old?.missed ?? 0,
    changes: old?.changes ?? [],
  };
}

/** Waits, in phase awaiting_window, until the window opens (or "now", or a reject); returns the slot to cut over in (null: no end). */
async function awaitWindow(run: Run, w: WindowControl): Promise<Slot | null> {
  for (;;) {
    const slot = w.now ? null : cutoverSlot({ window: w.window ?? undefined, notBefore: w.notBefore ?? undefined }, Date.now());
    if (!slot || slot.open <= Date.now() || run.decision === 'rejected') {
      if (slot || w.now) run.state.cutoverWindow = describe(w, slot, w.now ? 'overridden' : 'open', run.state.cutoverWindow);
      return slot;
    }
    run.state.cutoverWindow = describe(w, slot, 'waiting', run.state.cutoverWindow);
    if (run.state.phase !== 'awaiting_window') run.setPhase('awaiting_window');
    else run.refresh();
    w.changed = false;
    await condition(() => w.now || w.changed || run.decision === 'rejected', slot.open - Date.now());
  }
}

/** The cutover stage's activities ran out of the window (their schedule-to-close timeout, set to its end). */
function windowClosed(err: unknown, deadline: number | undefined): boolean {
  if (deadline === undefined || Date.now() < deadline - 1000) return false;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_CLOSE';
}

/** The cutover stage inside the window; 'rejected' when a reject came while it waited. */
export async function cutoverInWindow(run: Run, plan: Plan, strategy: Strategy): Promise<'rejected' | null> {
  const w = run.window;
  for (;;) {
    const slot = await awaitWindow(run, w);
    if (run.decision === 'rejected') return 'rejected';
    w.deadline = slot && Number.isFinite(slot.close) && !w.now ? slot.close : undefined;
    try {
      await runStage(run, plan, strategy.cutover);
      return null;
    } catch (err) {
      if (!windowClosed(err, w.deadline)) throw err;
      // Not through before the window closed: the next one (the tables already cut over stay so).
      const ws = run.state.cutoverWindow!;
      ws.missed += 1;
      ws.changes.push({ by: 'switchover', at: new Date().toISOString(), what: `the window closed before the cutover got its locks; waiting for the next one` });
    }
  }
}

/** retuneCutover and cutoverNow: accepted only while the approved switchover waits for its window. */
export function windowHandlers(run: Run): void {
  const waiting = (what: string) => {
    if (run.state.phase !== 'awaiting_window')
      throw new Error(`${what} refused: the switchover is in phase ${run.state.phase}, not waiting for its cutover window`);
  };
  const change = (by: string, what: string) => {
    const ws = run.state.cutoverWindow!;
    ws.changes.push({ by, at: new Date().toISOString(), what });
    if (ws.changes.length > 20) ws.changes.shift();
    run.window.changed = true;
  };
  setHandler(
    retuneCutoverUpdate,
    (r) => {
      if (r.window !== undefined) run.window.window = r.window;
      if (r.notBefore !== undefined) run.window.notBefore = r.notBefore;
      change(r.by, `window ${JSON.stringify(run.window.window)}, notBefore ${run.window.notBefore ?? 'none'}`);
      return run.state.cutoverWindow!;
    },
    {
      description: DESCRIPTIONS.retuneCutover,
      validator: (r) => {
        if (!r?.by) throw new Error('retuneCutover refused: give "by" (who changes it)');
        waiting(`retuneCutover by ${r.by}`);
        const checked = cutoverSpec.safeParse({ window: r.window ?? undefined, notBefore: r.notBefore ?? undefined });
        if (!checked.success) throw new Error(`retuneCutover by ${r.by} refused: ${describeIssues(checked.error)}`);
        if (r.window) cutoverWindowSpec.parse(r.window);
      },
    },
  );
  setHandler(
    cutoverNowUpdate,
    (r) => {
      run.window.now = true;
      change(r.by, `cut over now${r.comment ? `: ${r.comment}` : ''}`);
      return run.state.cutoverWindow!;
    },
    {
      description: DESCRIPTIONS.cutoverNow,
      validator: (r) => {
        if (!r?.by) throw new Error('cutoverNow refused: give "by" (who decides)');
        waiting(`cutoverNow by ${r.by}`);
        const approvers = run.input.approval.approvers;
        if (approvers.length && !approvers.includes(r.by))
          throw new Error(`cutoverNow by ${r.by} refused: not in approval.approvers (${approvers.join(', ')})`);
      },
    },
  );
}
