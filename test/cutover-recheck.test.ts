// The cutover re-checks the table before the point of no return (issue 12, item 9), and decides
// the table's state under its own lock (item 13). Own schema: `ledger`, 2000 rows.
import pg from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { createPools } from '../src/db';
import { approveSignal, statusQuery } from '../src/shared';
import { failureOf } from './failure-helpers';
import { databasesAndWorker, uniqueId, waitFor, waitForPhase } from './helpers';

const CHANGES = ['column', 'trigger', 'toggled', 'direct'] as const;
const TABLES = [{ table: 'ledger', partitionKey: 'booked_at', interval: 'month' }];

const env = databasesAndWorker([...CHANGES, 'replica', 'race'], async (db) => {
  await db.pool.query(`
    create table ledger (id bigserial primary key, booked_at timestamptz not null, amount_cents bigint not null);
    insert into ledger (booked_at, amount_cents) select now() - (g % 300) * interval '1 day', g from generate_series(1, 2000) g;
  `);
});
const dbs = env.dbs;

function start(database: string, id: string) {
  return env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: id,
    args: [{ tables: TABLES, database, batchSize: 500, backup: 'none' }],
  });
}

const CHANGE: Record<(typeof CHANGES)[number], { sql: string; message: RegExp; rows: number }> = {
  column: {
    sql: `alter table ledger add column note text`,
    message: /^cutover of public\.ledger refused: since verification, column "note" \(text\) was added to public\.ledger\. Nothing was changed; roll back/,
    rows: 2000,
  },
  trigger: {
    sql: `alter table ledger disable trigger ps_dual_write`,
    message:
      /^cutover of public\.ledger refused: since verification, the dual-write trigger ps_dual_write on public\.ledger is disabled, not enabled\. Nothing was changed/,
    rows: 2000,
  },
  toggled: {
    sql: `alter table ledger disable trigger ps_dual_write; update ledger set amount_cents = 0 where id = 7; alter table ledger enable trigger ps_dual_write`,
    message:
      /^cutover of public\.ledger refused: since verification, the dual-write trigger "ps_dual_write" on public\.ledger was disabled, enabled or replaced since it was installed \(it is enabled for origin sessions only now\); writes made meanwhile may not have reached ledger_partitioned\. Nothing was changed/,
    rows: 2000,
  },
  direct: {
    sql: `insert into ledger_partitioned (id, booked_at, amount_cents) values (999999, now(), 1)`,
    message:
      /^cutover of public\.ledger refused: since verification, 1 statement wrote ledger_partitioned directly, not through the dual-write trigger \(INSERT by postgres at .* UTC: insert into ledger_partitioned/,
    rows: 2000,
  },
};

test.each(CHANGES)(
  'a change between verification and approval (%s): the cutover refuses naming it, and the table is plain again with all its rows',
  async (change) => {
    const db = dbs[change];
    const handle = await start(change, uniqueId(`recheck-${change}`));
    await waitForPhase(handle, 'awaiting_approval');
    await db.pool.query(CHANGE[change].sql);
    await handle.signal(approveSignal, { by: 'alice' });
    const f = await failureOf(handle);
    expect(f.type).toBe('StateConflict');
    expect(f.message).toMatch(CHANGE[change].message);
    expect(f.message).toMatch(/rollback \S+-rollback completed: ledger back to plain \(was prepared\)/);
    const rels = await db.pool.query(`select relname, relkind::text as k from pg_class where relname like 'ledger%' and relkind in ('r', 'p') order by 1`);
    expect(rels.rows).toEqual([{ relname: 'ledger', k: 'r' }]);
    expect((await db.pool.query(`select count(*)::int as n from ledger`)).rows[0].n).toBe(CHANGE[change].rows);
  },
);

test('a replica session between verification and approval writes through the trigger (enabled always): the cutover goes through with its rows', async () => {
  const db = dbs.replica;
  const handle = await start('replica', uniqueId('recheck-replica'));
  await waitForPhase(handle, 'awaiting_approval');
  await db.pool.query(`begin; set local session_replication_role = replica;
    insert into ledger (booked_at, amount_cents) select now(), g from generate_series(1, 10) g;
    update ledger set amount_cents = -1 where id = 3; delete from ledger where id = 4; commit`);
  await handle.signal(approveSignal, { by: 'test' });
  const report = await handle.result();
  expect(report.tables[0].cutover).toMatchObject({ keysComparedSinceVerification: 12 });
  const same = await db.pool
    .query(`select (select count(*)::int from ledger) as n, (select count(*)::int from (select * from ledger except select * from ledger_legacy) x) as differ,
    (select amount_cents from ledger where id = 3)::int as updated`);
  expect(same.rows[0]).toEqual({ n: 2009, differ: 0, updated: -1 });
});

test('two cutover attempts at once on the same prepared table: one cuts over, the other finds it done', async () => {
  const db = dbs.race;
  const handle = await start('race', uniqueId('race'));
  await waitForPhase(handle, 'awaiting_approval');
  const tp = (await handle.query(statusQuery)).plan!.tables[0];
  const pools = createPools({ race: db.url });
  const acts = createActivities({ pools });
  const blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
  try {
    // A reader holds the table: both attempts queue for the cutover's lock, as an attempt whose
    // activity timed out (its transaction still running) and its retry would.
    await blocker.query('begin');
    await blocker.query('select count(*) from ledger');
    const info = { workflowExecution: { workflowId: handle.workflowId, runId: handle.firstExecutionRunId } };
    const attempts = [1, 2].map(() => new MockActivityEnvironment(info).run(acts.cutoverTable, 'race', tp, 2000));
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'partition-switchover' and wait_event_type = 'Lock'`,
          )
        ).rows[0].n === 2,
      'both attempts waiting for the lock',
      5000,
    );
    await blocker.query('commit');
    const results = await Promise.allSettled(attempts);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.status))).toEqual(['fulfilled', 'fulfilled']);
    const done = results.map((r) => (r as PromiseFulfilledResult<{ alreadyDone: boolean }>).value.alreadyDone).sort();
    expect(done).toEqual([false, true]);
    const rels = await db.pool.query(
      `select relname, relkind::text as k from pg_class where relname like 'ledger%' and relkind in ('r', 'p') and not relispartition order by 1`,
    );
    expect(rels.rows).toEqual([
      { relname: 'ledger', k: 'p' },
      { relname: 'ledger_legacy', k: 'r' },
    ]);
  } finally {
    await blocker.end();
    await pools.end();
    await handle.terminate('test done');
  }
});
