// The live writer (demo/load.ts) as a long activity of the rehearsal, and how the workflow steers
// it. The connection string is resolved here, in the worker, from the target's name. The workflow
// cannot message a running activity, so it writes the wanted state (running/paused/stopped) as
// an audit row; the writer polls it, applies it and acknowledges in another audit row, which
// works whichever worker runs which activity.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { withClient } from '../src/db';
import { fail } from '../src/errors';
import type { RehearsalInput } from '../src/input';
// TODO(issue 16): the only production import of demo/: the catalog-derived load generator replaces
// the demo's writer here. Until then the rehearsal's `load` works on the demo schema only.
// eslint-disable-next-line @typescript-eslint/no-restricted-imports
import { startLoad, type LoadHandle } from '../demo/load';
import type { WriterReport } from '../src/rehearsal';
import type { SwitchoverStatus } from '../src/status';
import { audit, Deps, workflowId } from './context';

export interface WriterControl {
  state: 'running' | 'paused' | 'stopped';
  /** Latency segment the writer's ops count under from now on. */
  label: string;
  /** Increases with every order, so a retried writer knows what it has applied. */
  seq: number;
}
export interface WriterAck extends WriterControl {
  ops: number;
  failures: number;
  /** The first distinct failures, `kind: message (SQLSTATE)`. */
  errors: string[];
}

const WRITER_TABLE = '(writer)';
const CONTROL = 'WRITER-CONTROL';
const ACK = 'WRITER';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function readRow<T>(c: pg.ClientBase, schema: string, stageName: string): Promise<T | undefined> {
  const r = await c.query(
    `select details from partition_switchover.audit where workflow_id = $1::text and schema_name = $2::text and table_name = $3::text and stage = $4::text`,
    [workflowId(), schema, WRITER_TABLE, stageName],
  );
  return r.rows[0]?.details as T | undefined;
}

/** After pause(), waits until no op has completed for 300 ms: the ops in flight are done. */
async function drained(handle: LoadHandle): Promise<void> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 100 && still < 3; i++) {
    const ops = handle.report().ops;
    still = ops === last ? still + 1 : 0;
    last = ops;
    await sleep(100);
  }
}

export function writerActivities({ pools }: Deps) {
  return {
    /** Runs the application's writer against `database` until told to stop (or the workflow goes away). */
    async runWriter(database: string, schema: string, load: NonNullable<RehearsalInput['load']>): Promise<WriterReport> {
      const pool = pools.get(database);
      const connectionString = pool.options.connectionString;
      if (!connectionString) throw fail('StateConflict', `database target "${database}" has no connection string the writer can use`);
      const ctx = Context.current();
      const handle = startLoad({ connectionString, ratePerSec: load.ratePerSec, concurrency: load.concurrency, mix: load.mix });
      handle.mark('start');
      let applied: WriterControl = { state: 'running', label: 'start', seq: -1 };
      const ack = (ctl: WriterControl) => {
        const r = handle.report();
        const details: WriterAck = { ...ctl, ops: r.ops, failures: r.failures, errors: r.errors.slice(0, 5) };
        return withClient(pool, (c) => audit(c, { schema, table: WRITER_TABLE, stage: ACK, details }));
      };
      try {
        while (!ctx.cancellationSignal.aborted) {
          const control = await withClient(pool, (c) => readRow<WriterControl>(c, schema, CONTROL)).catch(() => undefined);
          if (control && control.seq !== applied.seq) {
            if (control.state === 'stopped') {
              applied = control;
              break;
            }
            if (control.state === 'paused') {
              handle.pause();
              await drained(handle);
            } else {
              handle.mark(control.label);
              handle.resume();
            }
            applied = control;
            await ack(applied);
          }
          const r = handle.report();
          ctx.heartbeat({ ops: r.ops, failures: r.failures });
          await sleep(100);
        }
      } finally {
        await handle.stop();
      }
      await ack({ ...applied, state: 'stopped' }).catch(() => undefined);
      const { windows: _windows, ...report } = handle.report();
      return report;
    },

    /** Orders the writer into a state and waits until it says it is there (paused: its ops in flight are done). */
    async writerControl(database: string, schema: string, control: WriterControl): Promise<WriterAck> {
      const pool = pools.get(database);
      const ctx = Context.current();
      await withClient(pool, (c) => audit(c, { schema, table: WRITER_TABLE, stage: CONTROL, details: control }));
      for (;;) {
        const a = await withClient(pool, (c) => readRow<WriterAck>(c, schema, ACK));
        if (a && a.seq >= control.seq && (a.state === control.state || a.state === 'stopped')) return a;
        ctx.heartbeat();
        await ctx.sleep(100); // rejects when the activity is cancelled (worker shutdown, workflow gone)
      }
    },

    /** Polls another workflow's `status` query until its phase is one of `phases`; returns that phase. */
    async waitForWorkflowPhase(targetWorkflowId: string, phases: string[]): Promise<string> {
      const ctx = Context.current();
      const handle = ctx.client.workflow.getHandle(targetWorkflowId);
      for (;;) {
        const s = await handle.query<SwitchoverStatus>('status').catch(() => undefined);
        if (s && phases.includes(s.phase)) return s.phase;
        ctx.heartbeat(s?.phase);
        await ctx.sleep(250);
      }
    },
  };
}
