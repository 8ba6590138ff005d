// Exact under load: the live writer through copy, verify, approval, cutover and after; the copy's
// races forced one by one with held transactions; writes queued behind the cutover's lock; and
// verification catching a corrupted row. Real dev server, real databases.
import pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { DEMO_TABLES, seed } from '../demo/seed';
import { startLoad, type LoadReport } from '../demo/load';
import { approveSignal, statusQuery } from '../src/shared';
import type { SwitchoverStatus } from '../src/status';
import type { SwitchoverReport } from '../workflows/switchover';
import type { Activities } from '../activities';
import { switchoverInput } from '../src/input';
import { databasesAndWorker, tableRows, uniqueId, waitFor, waitForPhase, type TestDb } from './helpers';
import { failureOf } from './failure-helpers';

const SEEDED = 3000;
// Both ways the copy closes its race with writers, where the input has the choice.
const MODES: (string | undefined)[] = 'copyMode' in switchoverInput.shape ? ['recheck', 'lock'] : [undefined];

/**
 * A tiny generic hook: `gate(activity, database)` holds the next call of that activity for that
 * database until opened, so a test acts at an exact point of the saga (e.g. between the copy and
 * verification) without racing it.
 */
const gates = new Map<string, { reached: () => void; opened: Promise<void> }>();
function gate(activity: 'copyRange' | 'verifyTable', database: string, table: string) {
  let reached!: () => void;
  let open!: () => void;
  const wasReached = new Promise<void>((r) => (reached = r));
  gates.set(`${activity}/${database}/${table}`, { reached, opened: new Promise<void>((r) => (open = r)) });
  return { reached: wasReached, open };
}
/** Awaits a gate, failing at once if the workflow ends first (e.g. it failed before reaching it). */
async function reached(g: { reached: Promise<void> }, handle: WorkflowHandle): Promise<void> {
  const ended = handle.result().then(
    () => 'completed',
    (e: Error) => `failed: ${e.message}: ${(e.cause as Error)?.message}`,
  );
  const how = await Promise.race([g.reached.then(() => null), ended]);
  if (how !== null) throw new Error(`workflow ${handle.workflowId} ${how} before reaching the gate`);
}
function gated(acts: Activities): Activities {
  const hold = async (key: string) => {
    const g = gates.get(key);
    if (!g) return;
    gates.delete(key);
    g.reached();
    await g.opened;
  };
  return {
    ...acts,
    copyRange: async (...args) => (await hold(`copyRange/${args[0]}/${args[1].table}`), acts.copyRange(...args)),
    verifyTable: async (...args) => (await hold(`verifyTable/${args[0]}/${args[1].table}`), acts.verifyTable(...args)),
  };
}

const names = [...MODES.flatMap((m) => [`main_${m ?? 'default'}`, `races_${m ?? 'default'}`]), 'drift', 'drift_incremental'];
const env = databasesAndWorker(names, (db) => seed(db.pool, { rows: SEEDED, years: 2 }), { wrapActivities: gated });
const dbs = env.dbs;
afterAll(async () => {
  for (const c of holders) await c.end().catch(() => undefined);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connection of its own, to hold a transaction open while the switchover runs into it. */
const holders: pg.Client[] = [];
async function holder(d: TestDb) {
  const c = new pg.Client({ connectionString: d.url, application_name: 'ps-test-holder' });
  c.on('error', () => undefined); // a test that failed leaves it open; dropping the database ends it
  holders.push(c);
  await c.connect();
  const pid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  return { c, pid, q: (text: string, params: unknown[] = []) => c.query(text, params), end: () => c.end() };
}

/** Until a backend of `app` waits for a lock that `pid` holds (the interleaving is then forced). */
function blockedBy(d: TestDb, pid: number, app = 'partition-switchover') {
  return waitFor(
    async () =>
      (await d.pool.query(`select count(*)::int as n from pg_stat_activity where application_name = $2 and $1::int = any(pg_blocking_pids(pid))`, [pid, app]))
        .rows[0].n > 0,
    `a ${app} backend blocked by ${pid}`,
  );
}

async function same(d: TestDb, table: string) {
  const legacy = table.endsWith('_partitioned') ? table.replace(/_partitioned$/, '') : `${table}_legacy`;
  const [a, b] = [await tableRows(d.pool, table), await tableRows(d.pool, legacy)];
  expect(a.length).toBeGreaterThan(0);
  expect(a).toEqual(b);
}

const one = async (d: TestDb, text: string, params: unknown[] = []) => (await d.pool.query(text, params)).rows[0];

test.each(MODES)('writer at 500 ops/s through copy, verify, approval, cutover and after: zero failures, zero drift (copyMode %s)', async (copyMode) => {
  const database = `main_${copyMode ?? 'default'}`;
  const d = dbs[database];
  const load = startLoad({ connectionString: d.url, ratePerSec: 500, concurrency: 6, prepared: true, seed: 7 });
  load.mark('before');
  await sleep(1500);
  const handle = await env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('live'),
    args: [{ tables: DEMO_TABLES, database, batchSize: 100, throttle: { pauseMs: 40, parallelism: 2 }, ...(copyMode ? { copyMode } : {}) }],
  });
  // Each phase is a latency segment of the writer.
  let status: SwitchoverStatus | undefined;
  for (let phase = ''; phase !== 'awaiting_approval'; await sleep(50)) {
    status = await handle.query(statusQuery);
    if (['failed', 'rolling_back', 'rolled_back'].includes(status.phase)) throw new Error(`switchover ${status.phase}: ${status.error}`);
    if (status.phase !== phase) load.mark((phase = status.phase));
  }
  expect(status!.verification?.ok).toBe(true);
  await sleep(1000); // writing while the operator reads the report
  load.mark('cutover');
  await handle.signal(approveSignal, { by: 'alice' });
  const result: SwitchoverReport = await handle.result();
  load.mark('after');
  await sleep(1500);
  const report: LoadReport = await load.stop();

  expect(result.outcome).toBe('done');
  // Not one write fails while the table is plain (copy, verify, approval: the switchover's work).
  const beforeCutover = Object.entries(report.segments).filter(([k]) => !['cutover', 'after'].includes(k));
  expect(beforeCutover.map(([k, v]) => [k, v.failures])).toEqual(beforeCutover.map(([k]) => [k, 0]));
  // Once partitioned, PostgreSQL fails an UPDATE or DELETE that waited for a row another transaction
  // moved to another partition (a correction) with 40001, where a plain table re-reads the row: the
  // one failure a partitioned table adds, which an application retries (README). Nothing else fails.
  for (const e of report.errors) expect(e).toMatch(/already moved to another partition due to concurrent update \(40001\)$/);
  for (const seg of ['before', 'copy', 'verify', 'awaiting_approval', 'cutover', 'after']) expect(report.segments[seg]?.ops).toBeGreaterThan(0);
  for (const kind of Object.keys(report.byKind)) expect(report.byKind[kind].ops).toBeGreaterThan(0);

  // Row for row: the partitioned tables equal `<table>_legacy`, which held every committed write
  // until cutover and got every later one through the mirror.
  for (const t of DEMO_TABLES) {
    expect((await one(d, `select relkind::text as k from pg_class where oid = $1::regclass`, [t.table])).k).toBe('p');
    await same(d, t.table);
    // No id twice (the partitioned key is (id, date): a moved row must not leave a copy behind).
    expect(await one(d, `select count(*)::int - count(distinct id)::int as dupes from ${t.table}`)).toEqual({ dupes: 0 });
  }
  // Against what the writer itself committed: every insert is there once, every void took one row.
  const k = report.byKind;
  expect(await one(d, `select count(*)::int as n from revenues`)).toEqual({ n: SEEDED + k.insertRevenue.rows });
  expect(await one(d, `select count(*)::int as n from revenues where id > $1`, [SEEDED])).toEqual({ n: k.insertRevenue.rows });
  expect(await one(d, `select count(*)::int as n from expenses`)).toEqual({ n: SEEDED + k.insertExpense.rows - k.void.rows });
  expect(await one(d, `select count(*)::int - count(distinct (organization_id, property_id, balance_date))::int as dupes from daily_cash_balances`)).toEqual({
    dupes: 0,
  });
  expect(await one(d, `select count(*)::int as moved from revenues where occurred_at <> created_at`)).toEqual({
    moved: expect.any(Number),
  });

  // The note's figures.
  const seg = (s: string) =>
    report.segments[s] && { ops: report.segments[s].ops, p50: report.segments[s].p50, p99: report.segments[s].p99, max: report.segments[s].max };
  console.log(
    JSON.stringify({
      copyMode,
      ops: report.ops,
      failures: report.failures,
      errors: report.errors,
      opsPerSec: report.opsPerSec,
      byKind: Object.fromEntries(Object.entries(k).map(([x, v]) => [x, v.ops])),
      segments: Object.fromEntries(Object.keys(report.segments).map((s) => [s, seg(s)])),
      lockMs: Object.fromEntries(result.tables.map((t) => [t.table, Math.round(t.cutover!.lockMs)])),
      rows: Object.fromEntries(result.tables.map((t) => [t.table, t.verification!.legacy.rows])),
    }),
  );
});

test.each(MODES)(
  'copy races forced one by one (copyMode %s): a delete, an update, a partition-key move and an upsert between a batch snapshot and its insert',
  async (copyMode) => {
    const database = `races_${copyMode ?? 'default'}`;
    const d = dbs[database];
    const bal = await one(d, `select id::int, organization_id, property_id, balance_date::text from daily_cash_balances order by id offset 300 limit 1`);
    // Each table's copy is held at its start (the dual-write triggers are on by then).
    const copies = { revenues: gate('copyRange', database, 'revenues'), daily_cash_balances: gate('copyRange', database, 'daily_cash_balances') };
    const handle = await env.w.client.workflow.start('switchover', {
      taskQueue: env.w.taskQueue,
      workflowId: uniqueId('races'),
      args: [
        {
          tables: DEMO_TABLES.filter((t) => t.table !== 'expenses'),
          database,
          batchSize: 100,
          throttle: { parallelism: 1 },
          lockTimeoutMs: 15000,
          ...(copyMode ? { copyMode } : {}),
        },
      ],
    });
    const writes: { table: keyof typeof copies; id: number; text: string; params?: unknown[] }[] = [
      { table: 'revenues', id: 500, text: 'delete from revenues where id = 500' },
      { table: 'revenues', id: 700, text: `update revenues set amount_cents = 777777, status = 'void' where id = 700` },
      { table: 'revenues', id: 900, text: `update revenues set occurred_at = occurred_at + interval '35 days' where id = 900` },
      {
        table: 'daily_cash_balances',
        id: bal.id,
        text: `insert into daily_cash_balances (organization_id, property_id, balance_date, opening_cents, closing_cents) values ($1, $2, $3, 1, 42)
             on conflict (organization_id, property_id, balance_date) do update set closing_cents = excluded.closing_cents, updated_at = now()`,
        params: [bal.organization_id, bal.property_id, bal.balance_date],
      },
    ];
    const held = [];
    for (const table of ['revenues', 'daily_cash_balances'] as const) {
      await reached(copies[table], handle);
      // Each writer's statement runs (its trigger writes the partitioned copy) but does not commit yet.
      const mine = writes.filter((x) => x.table === table);
      const holders = [];
      for (const x of mine) {
        const h = await holder(d);
        await h.q('begin');
        expect((await h.q(x.text, x.params)).rowCount).toBe(1);
        holders.push(h);
      }
      copies[table].open();
      // The copy reaches each row while its writer still holds it, so the batch's snapshot predates
      // the write's commit: a locking batch waits for the writer; a lock-free one copies the old row
      // (or waits on the trigger's uncommitted key) and the re-check must repair it. Either way the
      // write commits only once the copy is at or past its row.
      for (const [i, h] of holders.entries()) {
        const x = mine[i];
        await waitFor(
          async () =>
            (
              await one(
                d,
                `select exists (select 1 from pg_stat_activity where application_name = 'partition-switchover' and $1::int = any(pg_blocking_pids(pid)))
                   or exists (select 1 from ${x.table}_partitioned where id = $2::int + 1) as ok`,
                [h.pid, x.id],
              )
            ).ok,
          `the copy at row ${x.table} ${x.id}`,
        );
        await h.q('commit');
      }
      held.push(...holders);
    }
    expect((await waitForPhase(handle, 'awaiting_approval')).verification?.ok).toBe(true);
    expect(await one(d, `select count(*)::int as n from revenues_partitioned where id = 500`)).toEqual({ n: 0 }); // not resurrected
    expect(await one(d, `select amount_cents::int, status from revenues_partitioned where id = 700`)).toEqual({ amount_cents: 777777, status: 'void' });
    expect(
      await one(
        d,
        `select count(*)::int as n, min(occurred_at) = (select occurred_at from revenues where id = 900) as moved from revenues_partitioned where id = 900`,
      ),
    ).toEqual({
      n: 1,
      moved: true,
    });
    expect(await one(d, `select closing_cents::int from daily_cash_balances_partitioned where id = $1`, [bal.id])).toEqual({ closing_cents: 42 });
    await same(d, 'revenues_partitioned');
    await same(d, 'daily_cash_balances_partitioned');

    // Writes that arrive while the cutover tries for its lock: it waits briefly (100 ms, doubling)
    // and often, so each write queues behind a try at most that long, and lands in the new table
    // either way (before the cutover through the dual-write trigger, after it directly).
    const C = await holder(d);
    await C.q('begin');
    await C.q('select count(*) from revenues');
    await handle.signal(approveSignal, { by: 'alice' });
    await blockedBy(d, C.pid);
    const queued = [
      `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category) values (1, 1, now(), 4242, 'spa') returning id`,
      `update revenues set status = 'pending' where id = 701`,
      `update revenues set occurred_at = occurred_at + interval '35 days' where id = 901`,
      `delete from revenues where id = 601`,
    ];
    const writers = await Promise.all(queued.map(() => holder(d)));
    const results = queued.map((text, i) => writers[i].q(text));
    const done = await Promise.all(results);
    await blockedBy(d, C.pid); // the cutover is still trying
    await C.q('commit');
    expect(done.map((r) => r.rowCount)).toEqual([1, 1, 1, 1]);
    const report = (await handle.result()) as SwitchoverReport;
    expect(report.outcome).toBe('done');
    const cut = report.tables.find((t) => t.table === 'revenues')!.cutover!;
    expect(cut).toMatchObject({ lockWaitMs: expect.any(Number), lockHeldMs: expect.any(Number) });
    expect(cut.attempts).toBeGreaterThan(1);
    const newId = done[0].rows[0].id;
    expect(await one(d, `select tableoid::regclass::text ~ '^revenues_p' as in_partition from revenues where id = $1`, [newId])).toEqual({
      in_partition: true,
    });
    expect(await one(d, `select status from revenues where id = 701`)).toEqual({ status: 'pending' });
    expect(await one(d, `select count(*)::int as n from revenues where id = 601`)).toEqual({ n: 0 });

    // Writes on the new tables are mirrored to `<table>_legacy`: insert, update, key move, delete, upsert.
    await d.pool.query(`insert into revenues (organization_id, property_id, occurred_at, amount_cents, category) values (2, 3, now(), 99, 'rooms')`);
    await d.pool.query(`update revenues set amount_cents = 1 where id = 702`);
    await d.pool.query(`update revenues set occurred_at = occurred_at - interval '40 days' where id = 902`);
    await d.pool.query(`delete from revenues where id = 602`);
    await d.pool.query(
      `insert into daily_cash_balances (organization_id, property_id, balance_date, opening_cents, closing_cents) values ($1, $2, $3, 1, 43)
     on conflict (organization_id, property_id, balance_date) do update set closing_cents = excluded.closing_cents`,
      [bal.organization_id, bal.property_id, bal.balance_date],
    );
    await same(d, 'revenues');
    await same(d, 'daily_cash_balances');
    expect(await one(d, `select count(*)::int - count(distinct id)::int as dupes from revenues`)).toEqual({ dupes: 0 });
  },
);

test('verify "full" catches drift: one row of the partitioned copy updated behind the triggers fails the switchover, naming its id', async () => {
  const database = 'drift';
  const d = dbs[database];
  // Held between the copy (and its re-check) and verification.
  const verify = gate('verifyTable', database, 'revenues');
  const handle = await env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('drift'),
    args: [{ tables: DEMO_TABLES.filter((t) => t.table !== 'daily_cash_balances'), database, batchSize: 500, verify: 'full' }],
  });
  await reached(verify, handle);
  expect((await d.pool.query(`update revenues_partitioned set amount_cents = amount_cents + 1 where id = 1234`)).rowCount).toBe(1);
  verify.open();
  const f = await failureOf(handle);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(/verification failed: revenues differs in \d{4}-\d{2}-01 \(ids 1234\)/);
  expect(f.message).toMatch(/rollback .* completed/);
  expect(await one(d, `select to_regclass('revenues_partitioned') as p, (select relkind::text from pg_class where oid = 'revenues'::regclass) as k`)).toEqual({
    p: null,
    k: 'r',
  });
});

test('verify "incremental" (the default): an update and a delete behind the triggers are seen, every row compared, both ids named', async () => {
  const database = 'drift_incremental';
  const d = dbs[database];
  const verify = gate('verifyTable', database, 'revenues');
  const handle = await env.w.client.workflow.start('switchover', {
    taskQueue: env.w.taskQueue,
    workflowId: uniqueId('drift-inc'),
    args: [{ tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }], database, batchSize: 500 }],
  });
  await reached(verify, handle);
  // Written through the triggers (logged and compared row by row): fine.
  await d.pool.query(`update revenues set amount_cents = amount_cents + 7 where id in (10, 11)`);
  // Behind them, on the partitioned copy itself: recorded by its statement trigger.
  expect((await d.pool.query(`update revenues_partitioned set amount_cents = amount_cents + 1 where id = 1234`)).rowCount).toBe(1);
  expect((await d.pool.query(`delete from revenues_partitioned where id = 1500`)).rowCount).toBe(1);
  verify.open();
  const f = await failureOf(handle);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(
    /verification failed: revenues differs in \d{4}-\d{2}-01, \d{4}-\d{2}-01 \(ids 1234, 1500\) \(every row compared: 2 statements wrote revenues_partitioned directly, not through the dual-write trigger \(UPDATE by postgres at [^)]*: update revenues_partitioned set amount_cents = amount_cents \+ 1 where id = 1234; DELETE by postgres/,
  );
  // The audit row says which verification ran and why.
  const audit = await one(
    d,
    `select details->>'mode' as mode, details->'escalated'->>0 as why from partition_switchover.audit where stage = 'POST-MIGRATION' and table_name = 'revenues'`,
  );
  expect(audit).toMatchObject({ mode: 'full', why: expect.stringMatching(/^2 statements wrote revenues_partitioned directly/) });
  expect(await one(d, `select to_regclass('revenues_partitioned') as p`)).toEqual({ p: null });
});
