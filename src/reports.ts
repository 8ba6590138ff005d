// What each workflow returns. Types only: workflows, clients and tests share them.
import type { CopyResult, CutoverResult, Plan, RecheckResult, StageRecord, TableVerification } from './types';
import type { SwitchoverStatus } from './status';

export interface TableReport {
  table: string;
  partitionsCreated: number;
  stages: StageRecord[];
  copy: {
    rows: number;
    ms: number;
    streams: CopyResult[];
    recheck?: RecheckResult;
    indexes?: { indexes: number; partitionIndexes: number; foreignKeys: number; ms: number };
  };
  verification?: TableVerification;
  cutover?: CutoverResult;
}

export interface SwitchoverReport {
  workflowId: string;
  outcome: 'done' | 'dry_run' | 'rejected' | 'timed_out' | 'cleaned';
  database: string;
  schema: string;
  tables: TableReport[];
  approval: SwitchoverStatus['approval'];
  phaseMs: Record<string, number>;
  plan?: Plan;
  rollback?: RollbackOutcome;
}

export interface RollbackReport {
  /** `left`: relations under our names that the rollback did not drop (not made by this switchover), and why. */
  tables: { table: string; from: string; restoredRows: number | null; left?: string[] }[];
  /** Tables named in the input for which no switchover was recorded. */
  nothingToDo: string[];
}

/** What the compensation did: the rollback child's report, its id, and whether it completed. */
export type RollbackOutcome = RollbackReport & { workflowId: string; ok: boolean; error?: string };

/** A table's report before any stage ran. */
export const emptyTableReport = (table: string): TableReport => ({ table, partitionsCreated: 0, stages: [], copy: { rows: 0, ms: 0, streams: [] } });
