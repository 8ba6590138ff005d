// No statement of ours makes an application write fail or wait long (issue 12, items 1 and 4).
// Own schema: `ledger` with a foreign key to `orgs`, so a writer locks ledger, ledger_partitioned
// (dual-write trigger) and orgs (foreign key checks), in either order across its statements.
// Item 1: a writer transaction that holds a row of the partitioned side and then inserts a row
// referencing orgs, while buildIndexes attaches the parent's foreign key: 0 failed writes.
// Item 4: a long transaction holds a row while each step of ours that locks the live table runs
// (trigger install, rollback before cutover, cutover, cleanup): each gives up within its budget
// and retries, and no application write waits longer than that budget.
import pg from 'pg';
import { rejectSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { injectAfter, type Injection } from './failure-helpers';
import { lockedTx } from '../activities/locks';
import { databasesAndWorker, uniqueId, waitFor, waitForPhase, type TestDb } from './helpers';

const plan = new Map<string, Injection>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function schema(db: TestDb) {
  await db.pool.query(`
    create table orgs (id bigint primary key, name text not null);
    insert into orgs select g, 'org ' || g from generate_series(1, 20) g;
    create table ledger (
      id bigserial primary key,
      org_id bigint not null references orgs (id),
      booked_at timestamptz not null,
      amount_cents bigint not null
    );
    insert into ledger (org_id, booked_at, amount_cents)
      select 1 + g % 20, now() - (g % 300) * interval '1 day', g from generate_series(1, 2000) g;
  `);
}

const env = databasesAndWorker(['deadlock', 'steps', 'steps2', 'fkdrop'], (db) => schema(db), { wrapActivities: injectAfter(plan) });
const dbs = env.dbs;

const TABLES = [{ table: 'ledger', partitionKey: 'booked_at', interval: 'month' }];

function start(database: string, id: string, input: Record<string, unknown> = {}) {
  return env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: id,
    args: [{ tables: TABLES, database, batchSize: 500, backup: 'none', approval: { required: false }, ...input }],
  });
}

/** Application writers (own connections): single-row inserts, updates, partition-key moves and deletes, until stopped. */
function writers(db: TestDb, n: number) {
  const pool = new pg.Pool({ connectionString: db.url, max: n });
  const failed: string[] = [];
  let writes = 0;
  let stop = false;
  const loops = Array.from({ length: n }, async () => {
    while (!stop) {
      const id = 1 + Math.floor(Math.random() * 2000);
      const op = writes % 4;
      try {
        if (op === 0) {
          await pool.query(`insert into ledger (org_id, booked_at, amount_cents) values ($1, now() - $2 * interval '1 day', 1)`, [1 + (id % 20), id % 200]);
        } else if (op === 1) await pool.query(`update ledger set amount_cents = amount_cents + 1 where id = $1`, [id]);
        else if (op === 2) await pool.query(`update ledger set booked_at = now() - $2 * interval '1 day' where id = $1`, [id, id % 250]);
        else await pool.query(`delete from ledger where id = $1 and id % 10 = 0`, [id]);
        writes++;
      } catch (err) {
        failed.push((err as Error).message);
      }
      await sleep(5);
    }
  });
  return {
    failed,
    count: () => writes,
    async stop() {
      stop = true;
      await Promise.all(loops);
      await pool.end();
    },
  };
}

test('a writer holding a row of the partitioned side while the foreign key is attached: no application write fails', async () => {
  const db = dbs.deadlock;
  const id = uniqueId('fk-attach');
  const load = writers(db, 2);
  let race: Promise<void> | undefined;
  const writerErrors: string[] = [];
  plan.set(id, {
    activity: 'buildIndexes',
    before: true,
    action: async () => {
      // Another session reads orgs and stays open: the attach's lock on orgs has to wait for it,
      // which holds the attach right where the race is.
      const reader = await db.pool.connect();
      await reader.query('begin');
      await reader.query('select count(*) from orgs');
      race = (async () => {
        const writer = await db.pool.connect();
        try {
          await waitFor(
            async () =>
              (
                await db.pool.query(
                  `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ~ 'LOCK TABLE \\S*orgs\\S* IN ACCESS EXCLUSIVE MODE'`,
                )
              ).rowCount,
            'the attach waiting for its lock on orgs',
          );
          // The application's transaction: an update (the dual-write trigger holds ledger_partitioned), a pause,
          // then an insert whose foreign key check needs orgs.
          await writer.query('begin');
          const updated = writer.query(`update ledger set amount_cents = amount_cents + 1 where id = 7`);
          await Promise.race([updated, sleep(300)]);
          await updated;
          const inserted = writer.query(`insert into ledger (org_id, booked_at, amount_cents) values (3, now(), 42)`);
          await Promise.race([inserted, sleep(200)]);
          await reader.query('commit');
          await inserted;
          await sleep(20);
          await writer.query('commit');
        } catch (err) {
          writerErrors.push((err as Error).message);
          await writer.query('rollback').catch(() => undefined);
          await reader.query('rollback').catch(() => undefined);
        } finally {
          writer.release();
          reader.release();
        }
      })();
    },
  });
  const handle = await start('deadlock', id);
  let report: SwitchoverReport | undefined;
  try {
    report = await handle.result();
  } finally {
    await race;
    await load.stop();
  }
  expect(writerErrors).toEqual([]);
  expect(load.failed).toEqual([]);
  expect(load.count()).toBeGreaterThan(50);
  expect(report?.outcome).toBe('done');
  expect((await db.pool.query(`select relkind::text as k from pg_class where relname = 'ledger'`)).rows[0].k).toBe('p');
  const fk = await db.pool.query(`select convalidated from pg_constraint where conrelid = 'ledger'::regclass and contype = 'f'`);
  expect(fk.rows).toEqual([{ convalidated: true }]);
  const counts = (await db.pool.query(`select (select count(*) from ledger)::int as p, (select count(*) from ledger_legacy)::int as l`)).rows[0];
  expect(counts.p).toBe(counts.l);
  // The attach, not the writer, gave way (the writer's insert waited for it), and was retried.
  const audit = await db.pool.query(`select details from partition_switchover.audit where workflow_id = $1 and stage = 'INDEXES'`, [id]);
  expect(audit.rows[0].details.lockAttempts.foreignKeys).toBeGreaterThanOrEqual(2);
  const planned = await db.pool.query(`select details from partition_switchover.audit where workflow_id = $1 and stage = 'PLAN'`, [id]);
  expect(planned.rows[0].details.warnings).toContainEqual(
    expect.stringMatching(
      /^foreign key ledger_org_id_fkey references orgs: attaching it .* takes ACCESS EXCLUSIVE on orgs .* held for milliseconds under lock_timeout/,
    ),
  );
});

/**
 * A long application transaction that updated row 1 of ledger (so it holds the table, and through
 * our triggers the other one) for `ms`, while a probe keeps writing other rows and a monitor
 * records each statement of ours that waits for a lock. Resolves once the hold is in place.
 */
async function holdRow(db: TestDb, ms: number) {
  const clients = await Promise.all(
    [0, 1, 2].map(async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      return c;
    }),
  );
  const [long, probe, monitor] = clients;
  await long.query('begin');
  await long.query('update ledger set amount_cents = amount_cents where id = 1');
  const t0 = Date.now();
  const waits: number[] = [];
  const failed: string[] = [];
  const ours = new Set<string>();
  const probing = (async () => {
    while (Date.now() - t0 < ms) {
      const t = Date.now();
      try {
        await probe.query('update ledger set amount_cents = amount_cents + 1 where id = $1', [100 + Math.floor(Math.random() * 1800)]);
      } catch (err) {
        failed.push((err as Error).message);
      }
      waits.push(Date.now() - t);
      await sleep(10);
    }
  })();
  const monitoring = (async () => {
    while (Date.now() - t0 < ms) {
      const r = await monitor.query(
        `select pid, query_start::text as started from pg_stat_activity
         where datname = current_database() and application_name = 'partition-switchover' and wait_event_type = 'Lock'`,
      );
      for (const x of r.rows) ours.add(`${x.pid}@${x.started}`);
      await sleep(25);
    }
  })();
  // The long transaction ends by itself after `ms` (whatever waits behind it); our step then completes.
  const released = sleep(ms).then(() => long.query('commit'));
  const finished = (async () => {
    await Promise.all([probing, monitoring, released]);
    await Promise.all(clients.map((c) => c.end()));
    return { maxWaitMs: Math.max(...waits), probes: waits.length, failed, ourWaits: ours.size };
  })();
  return { done: () => finished };
}

/** What a step of ours does to the application while the row is held: waits bounded by the budget, and it gave up and retried. */
function expectBounded(r: Awaited<ReturnType<Awaited<ReturnType<typeof holdRow>>['done']>>, budgetMs: number) {
  expect(r.failed).toEqual([]);
  expect(r.maxWaitMs).toBeLessThan(budgetMs + 500);
  expect(r.probes).toBeGreaterThan(3);
  expect(r.ourWaits).toBeGreaterThanOrEqual(2);
}

const HOLD_MS = 3000;
// deadlock_timeout is 1 s on the test server: a budget is at most 750 ms (lockTimeoutMs 2000 is capped).
const CAPPED_MS = 750;

test('a long transaction holding a row: trigger install and rollback before cutover give way within their budget and retry', async () => {
  const db = dbs.steps;
  const id = uniqueId('hold-triggers');
  let held: Awaited<ReturnType<typeof holdRow>> | undefined;
  plan.set(id, { activity: 'installTriggers', before: true, action: async () => void (held = await holdRow(db, HOLD_MS)) });
  const handle = await start('steps', id, { approval: { required: true } });
  await waitForPhase(handle, 'awaiting_approval');
  expectBounded(await held!.done(), CAPPED_MS);

  const rb = await holdRow(db, HOLD_MS);
  await handle.signal(rejectSignal, { by: 'bob', reason: 'test' });
  const report: SwitchoverReport = await handle.result();
  expectBounded(await rb.done(), CAPPED_MS);
  expect(report.outcome).toBe('rejected');
  expect((await db.pool.query(`select relname from pg_class where relname like 'ledger%' and relkind in ('r', 'p') order by 1`)).rows).toEqual([
    { relname: 'ledger' },
  ]);
  expect((await db.pool.query(`select count(*)::int as n from pg_trigger where tgrelid = 'ledger'::regclass and not tgisinternal`)).rows[0].n).toBe(0);
});

test('a long transaction holding a row: cutover and cleanup give way within their budget and retry, then complete', async () => {
  const db = dbs.steps2;
  const id = uniqueId('hold-cutover');
  let held: Awaited<ReturnType<typeof holdRow>> | undefined;
  plan.set(id, { activity: 'cutoverTable', before: true, action: async () => void (held = await holdRow(db, HOLD_MS)) });
  const handle = await start('steps2', id, { lockTimeoutMs: 300 });
  const report: SwitchoverReport = await handle.result();
  expectBounded(await held!.done(), 300);
  expect(report.outcome).toBe('done');
  expect((await db.pool.query(`select relkind::text as k from pg_class where relname = 'ledger'`)).rows[0].k).toBe('p');

  const cl = await holdRow(db, HOLD_MS);
  const cleaned: SwitchoverReport = await env.w.client.workflow.execute('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('hold-cleanup'),
    args: [{ tables: TABLES, database: 'steps2', mode: 'cleanup' }],
  });
  expectBounded(await cl.done(), CAPPED_MS);
  expect(cleaned.outcome).toBe('cleaned');
  expect((await db.pool.query(`select to_regclass('ledger_legacy') is null as gone`)).rows[0].gone).toBe(true);
});

test('a lock timeout names the lock it waited for and the session holding it; a budget our own statements spent says so', async () => {
  const db = dbs.deadlock;
  const holder = new pg.Client({ connectionString: db.url, application_name: 'holder' });
  await holder.connect();
  holder.on('error', () => undefined);
  const pid = (await holder.query('select pg_backend_pid() as pid')).rows[0].pid;
  await holder.query('begin');
  await holder.query('update orgs set name = name where id = 1');
  const what = 'test lock of public.orgs';
  const blocked = lockedTx(db.pool, { what, lockTimeoutMs: 200, attempts: 2 }, (tx) => tx.q('LOCK TABLE orgs IN ACCESS EXCLUSIVE MODE'));
  await expect(blocked.finally(() => holder.query('rollback'))).rejects.toThrow(
    new RegExp(
      `^${what} could not take its lock within 200 ms \\(2 tries; .*Last seen: it waited for AccessExclusiveLock on orgs, held by session ${pid} \\(application "holder", user postgres, idle in transaction, in a transaction for [\\d.]+ s: "update orgs set name = name where id = 1"\\)\\. Nothing was changed`,
    ),
  );
  await holder.end();
  const spent = lockedTx(db.pool, { what, lockTimeoutMs: 200, attempts: 1 }, (tx) => tx.q('select pg_sleep(1)'));
  await expect(spent).rejects.toThrow(/No other session was seen holding what it waited for: its own statements used the budget \(the longest ran \d+ ms\)/);
});

test('rollback before cutover while a transaction holds the referenced table: the table is plain at once; the partitioned copy is dropped (its foreign key first) once it ends', async () => {
  const db = dbs.fkdrop;
  const id = uniqueId('fk-drop');
  const handle = await start('fkdrop', id, { approval: { required: true } });
  await waitForPhase(handle, 'awaiting_approval');
  // The foreign key is attached to ledger_partitioned by now (buildIndexes).
  expect(
    (await db.pool.query(`select count(*)::int as n from pg_constraint where conrelid = 'ledger_partitioned'::regclass and contype = 'f' and conparentid = 0`))
      .rows[0].n,
  ).toBe(1);
  // An application transaction that holds a row of orgs: dropping the foreign key's triggers there waits for it.
  const holder = new pg.Client({ connectionString: db.url, application_name: 'holder' });
  await holder.connect();
  holder.on('error', () => undefined);
  await holder.query('begin');
  await holder.query('update orgs set name = name where id = 1');
  const w1 = writers(db, 1);
  try {
    await handle.signal(rejectSignal, { by: 'bob', reason: 'test' });
    // The renames and the triggers' removal need nothing of orgs: the table is plain and writable while orgs is held.
    await waitFor(
      async () => (await db.pool.query(`select count(*)::int as n from pg_trigger where tgrelid = 'ledger'::regclass and not tgisinternal`)).rows[0].n === 0,
      'dual-write trigger off',
    );
    await sleep(2000);
    expect((await db.pool.query(`select to_regclass('ledger_partitioned') is not null as there`)).rows[0].there).toBe(true);
  } finally {
    await holder.query('rollback');
    await holder.end();
  }
  const report: SwitchoverReport = await handle.result();
  await w1.stop();
  expect(w1.failed).toEqual([]);
  expect(report.outcome).toBe('rejected');
  expect((await db.pool.query(`select relname from pg_class where relname like 'ledger%' and relkind in ('r', 'p') order by 1`)).rows).toEqual([
    { relname: 'ledger' },
  ]);
});
