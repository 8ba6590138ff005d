// What a stage's undo gets: the rollback's transaction (under the lock budget), the plan, where
// the table stood when the rollback began, and what the undos report back.
import type { TablePlan } from '../src/types';
import type { LockedTx } from './locks';
import type { TableState } from './bookkeeping';

export interface UndoContext {
  tx: LockedTx;
  tp: TablePlan;
  /** The table's state when the rollback began. */
  from: TableState;
  /** Relations under our names that were not dropped (not made by this switchover), and why. */
  left: string[];
}

export type Undo = (u: UndoContext) => Promise<void>;
