// The strategies, each an ordered list of stages: what the switchover runs between the backup
// and the approval, its cutover, how it waits for the decision, and what the rehearsal makes and
// tests of it before the real switchover. Adding a strategy: its stage module here in workflows/,
// its activities, its undo (activities/rollback-table.ts) and its dry-run statements (preflight).
import type { Check } from '../src/rehearsal-report';
import type { Plan, StrategyName, TablePlan } from '../src/types';
import type { Run, Tracked } from './control';
import * as attach from './attach-strategy';
import * as copy from './copy-strategy';
import { opts } from './options';
import { acts, type Stage } from './stages';
import { bad, ok } from '../src/rehearsal-report';
import type { TableReport } from '../src/reports';

export interface Strategy {
  /** From prepare through verification, in order (after claim, checksums and backup). */
  stages: Stage[];
  /** The point of no return, after approval. */
  cutover: Stage;
  /** Waits up to `timeoutMs` for approve or reject; true once decided. */
  awaitDecision(run: Run, plan: Plan, timeoutMs: number): Promise<boolean>;
  /** What stays in place when nobody approved in time (approval.onTimeout "fail"). */
  leftInPlace(plan: Plan): string;
  /** After a finished switchover: drops what it kept for a rollback (cleanup). */
  cleanup(run: Tracked, tp: TablePlan): Promise<void>;
  /** The rehearsal's phases 2 and 3: what it makes and checks of this strategy before the real switchover, then removes. */
  rehearse: {
    prepare: Stage;
    prepareChecks(run: Run, tp: TablePlan): Promise<Check[]>;
    /** A summary of what phase 2 made of one table. */
    prepared(tp: TablePlan): string;
    /** Phase 5's check of one table's switchover. */
    switched(t: TableReport): Check;
    /** Whether the plain table stays readable after cutover (`<table>_legacy`): phase 6 compares answers with it while the load writes. */
    legacyCopy: boolean;
    /** The key the load must stay below until cutover (attach: the cutoff, which the CHECK enforces). */
    loadCutoff?(tp: TablePlan): string;
    /** The dual-write triggers and their test, for strategies that have them. */
    triggers?: { stage: Stage; test(run: Run, tp: TablePlan): Promise<Check[]> };
  };
}

export const STRATEGIES: Record<StrategyName, Strategy> = {
  copy: {
    stages: [copy.prepare, copy.triggers, copy.copy, copy.verify],
    cutover: copy.cutover,
    awaitDecision: copy.awaitDecision,
    leftInPlace: copy.leftInPlace,
    async cleanup(run, tp) {
      await acts.cleanupTable.executeWithOptions(opts(`cleanup ${tp.table}: drop mirror, ${tp.names.legacy}, ${tp.names.backup}`), [run.database, tp]);
    },
    rehearse: {
      prepare: copy.prepare,
      prepareChecks: (run, tp) => acts.rehearsalPrepareCheck(run.input.database, tp),
      prepared: (tp) => `${tp.names.partitioned}: ${tp.partitions.length} partitions`,
      switched: (t) =>
        t.verification?.ok
          ? ok(
              `${t.table} switchover`,
              `${t.copy.rows} rows copied in ${t.copy.ms} ms, verified in ${t.verification.ms} ms, cutover lock ${t.cutover?.lockMs.toFixed(1)} ms`,
            )
          : bad(`${t.table} switchover`, 'not verified'),
      legacyCopy: true,
      triggers: {
        stage: copy.triggers,
        test: (run, tp) =>
          acts.rehearsalTriggerTest.executeWithOptions(
            opts(`trigger behaviour ${tp.table}: insert, update, key move, upsert, delete of marked rows (rolled back)`),
            [run.input.database, tp],
          ),
      },
    },
  },
  attach: {
    stages: [attach.prepare, attach.verify],
    cutover: attach.cutover,
    awaitDecision: attach.awaitDecision,
    leftInPlace: attach.leftInPlace,
    async cleanup(run, tp) {
      await acts.attachCleanup.executeWithOptions(opts(`cleanup ${tp.table}: bookkeeping only (attach: no legacy copy)`), [run.database, tp]);
    },
    rehearse: {
      prepare: attach.parent,
      prepareChecks: async (_run, table) => {
        const { names, interval, attach: a } = attach.attached(table);
        return [ok(`${table.table} parent`, `${names.partitioned}: ${a.partitions.length} ${interval} partitions from the cutoff ${a.cutoff}; ${a.why}`)];
      },
      prepared: (table) => {
        const { names, attach: a } = attach.attached(table);
        return `${names.partitioned}: ${a.partitions.length} partitions from ${a.cutoff}, ${a.history} before it`;
      },
      switched: (t) => {
        const v = t.stages.find((x) => x.stage === 'ATTACH-VERIFY');
        return v
          ? ok(
              `${t.table} switchover`,
              `${v.rows} rows attached as the history partition (no copy), verified in ${v.ms} ms, cutover lock ${t.cutover?.lockMs.toFixed(1)} ms`,
            )
          : bad(`${t.table} switchover`, 'not verified');
      },
      legacyCopy: false,
      // The load writes as an application within its cutoff does (the CHECK refuses later keys until cutover).
      loadCutoff: (tp) => attach.attached(tp).attach.cutoff,
    },
  },
};

/** The strategy of a recorded plan. */
export function strategyOf(tp: TablePlan): Strategy {
  return STRATEGIES[tp.attach ? 'attach' : 'copy'];
}
