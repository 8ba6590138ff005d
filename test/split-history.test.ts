// splitHistory (README "Splitting the history partition") on real PostgreSQL and the dev server,
// after an attach switchover: bad input, a dry run and a name already taken change nothing; a
// split stopped before cutover is rolled back to the same schema; a split under a live writer
// (inserts, updates, key moves across periods, deletes, rows after the cutoff) loses no write and
// fails none, ends with one partition per period plus pmin, the rows equal to the writer's model
// and `<table>_history_legacy` equal to its rows before the cutoff; a rollback after cutover puts
// the history partition back with every write made since; a second split with retention drops old
// periods; cleanup drops `<table>_history_legacy`.
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { createPools } from '../src/db';
import type { SwitchoverReport } from '../workflows/switchover';
import type { SplitReport } from '../workflows/split-history';
import { splitStatusQuery } from '../src/shared';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, modelWriter, startTestWorker, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
let cutoff: string;
const T = 'ledger';

beforeAll(async () => {
  db = await createTestDb('split_t');
  await db.pool.query(`
    create table ${T} (id bigserial primary key, occurred_at timestamptz not null, amount_cents bigint not null default 0, note text);
    create index ${T}_occurred on ${T} (occurred_at);
    create index ${T}_amount on ${T} (amount_cents) where amount_cents > 100;
    grant select on ${T} to public;
    create or replace function ${T}_touch() returns trigger language plpgsql as $$ begin new.note := coalesce(new.note, 'touched'); return new; end $$;
    create trigger ${T}_touch before insert or update on ${T} for each row execute function ${T}_touch();
    insert into ${T} (occurred_at, amount_cents) select now() - (g % 160) * interval '1 day' - g * interval '1 minute', g from generate_series(1, 3000) g;
  `);
  w = await startTestWorker({ default: db.url });
  const r: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('attach'),
    args: [
      { tables: [{ table: T, partitionKey: 'occurred_at', interval: 'month' }], strategy: 'attach', backup: 'none', premake: 1, approval: { required: false } },
    ],
  });
  expect(r.outcome).toBe('done');
  cutoff = (await db.pool.query(`select details->'attach'->>'cutoff' as c from partition_switchover.audit where stage = 'PLAN' and table_name = $1`, [T]))
    .rows[0].c;
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

const split = (input: Record<string, unknown>, prefix = 'split') =>
  w.client.workflow.start('splitHistory', { taskQueue: w.taskQueue, workflowId: uniqueId(prefix), args: [{ table: T, ...input }] });
const run = async (input: Record<string, unknown>): Promise<SplitReport> => (await split(input)).result();
const partitions = async () =>
  (
    await db.pool.query(`select c.relname as n from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = $1::regclass order by 1`, [T])
  ).rows.map((r) => r.n as string);
const rowsOf = async (table: string, where = 'true') =>
  (await db.pool.query(`select t.id::text, t.occurred_at::text, t.amount_cents::text, t.note from ${table} t where ${where} order by t.id`)).rows.map(
    (r) => `${r.id} ${r.occurred_at} ${r.amount_cents} ${r.note}`,
  );
const schema = () => dump(db.url, { schemaOnly: true });

/** A live writer: inserts before and after the cutoff, updates, key moves across periods, deletes; keeps what it committed. */
function liveWriter() {
  return modelWriter(
    db.url,
    T,
    ['id', 'occurred_at', 'amount_cents', 'note'],
    async (w) => {
      const op = (w.n - 1) % 5;
      if (op === 0) await w.write(`insert into ${T} (occurred_at, amount_cents) values (now() - random() * interval '150 days', 7)`);
      else if (op === 1) await w.write(`insert into ${T} (occurred_at, amount_cents) values ($1::timestamptz + interval '3 days', 8)`, [cutoff]);
      else if (op === 2) await w.write(`update ${T} set amount_cents = amount_cents + 1 where id = $1`, [w.pick()]);
      // A key move back 40 days: across a period boundary most of the time, and sometimes into pmin.
      else if (op === 3) await w.write(`update ${T} set occurred_at = occurred_at - interval '40 days' where id = $1`, [w.pick()]);
      else await w.remove(w.pick());
    },
    3,
  );
}

test('bad input, a dry run and a name already taken change nothing', async () => {
  await expect(run({ batchSize: 0 })).rejects.toMatchObject({ cause: { message: expect.stringMatching(/invalid splitHistory input: batchSize/) } });
  await expect(run({ table: 'x; drop table ledger' })).rejects.toMatchObject({
    cause: { message: expect.stringMatching(/table: must be a plain identifier/) },
  });
  const before = await schema();
  const dry = await run({ dryRun: true });
  expect(dry.dryRun).toBe(true);
  expect(dry.plan!.cutoff).toBe(cutoff);
  expect(dry.plan!.periods[0]).toMatchObject({ name: `${T}_pmin`, from: 'MINVALUE' });
  expect(dry.plan!.periods.length).toBeGreaterThan(4);
  expect(dry.plan!.periods.at(-1)!.to).toBe(cutoff);
  // The history partition's index on the key is the copy's order: no index to build.
  expect(dry.plan!.keyIndexExisting).not.toBeNull();
  expect(await schema()).toBe(before);
  const taken = dry.plan!.periods[2].name;
  await db.pool.query(`create table ${taken} (x int)`);
  const f = await failureOf(await split({}));
  expect(f.chain.join(' | ')).toMatch(new RegExp(`public\\.${taken} already exists`));
  await db.pool.query(`drop table ${taken}`);
  expect(await schema()).toBe(before);
  // A table no attach switchover cut over.
  await db.pool.query(`create table plain_t (id int primary key, at date not null)`);
  const g = await failureOf(await split({ table: 'plain_t' }));
  expect(g.chain.join(' | ')).toMatch(/plain_t is not a table that a switchover cut over/);
  await db.pool.query(`drop table plain_t`);
});

test('a split stopped before cutover is rolled back to the schema it found', async () => {
  const before = await schema();
  const rows = await rowsOf(T);
  const h = await split({ batchSize: 50, pauseMs: 200 });
  await waitFor(async () => (await h.query(splitStatusQuery)).phase === 'copy', 'the copy');
  await h.terminate('test: stop the split mid-copy');
  const r = await run({ mode: 'rollback' });
  expect(r.undo).toMatchObject({ from: 'prepared' });
  expect(r.undo!.dropped).toContain(`${T}_split`);
  expect(await schema()).toBe(before);
  expect(await rowsOf(T)).toEqual(rows);
  // Cancelled (the operator's "Cancel"): the split rolls itself back and ends Canceled.
  const c = await split({ batchSize: 50, pauseMs: 200 });
  await waitFor(async () => (await c.query(splitStatusQuery)).phase === 'copy', 'the copy');
  await c.cancel();
  await expect(c.result()).rejects.toMatchObject({ cause: { name: 'CancelledFailure' } });
  expect((await c.query(splitStatusQuery)).phase).toBe('rolled_back');
  expect(await schema()).toBe(before);
});

test('a period that differs from the history (a row deleted behind the mirror) stops the split, which rolls itself back', async () => {
  const before = await schema();
  const rows = await rowsOf(T);
  // A worker whose verification of the fourth period first deletes a row of it behind the mirror.
  const sabotaged = await startTestWorker({ default: db.url }, undefined, {
    wrapActivities: (acts) => ({
      ...acts,
      async splitVerifyPeriod(...args: Parameters<typeof acts.splitVerifyPeriod>) {
        const [, plan, i] = args;
        if (i === 3) await db.pool.query(`delete from ${plan.periods[i].name} where id = (select min(id) from ${plan.periods[i].name})`);
        return acts.splitVerifyPeriod(...args);
      },
    }),
  });
  try {
    const h = await sabotaged.client.workflow.start('splitHistory', {
      taskQueue: sabotaged.taskQueue,
      workflowId: uniqueId('split-bad'),
      args: [{ table: T }],
    });
    const f = await failureOf(h);
    expect(f.type).toBe('ParityMismatch');
    expect(f.message).toMatch(/differs from the history's rows of .*; the split is rolled back/);
    const st = await h.query(splitStatusQuery);
    expect(st.phase).toBe('rolled_back');
    expect(st.periods[3].verification).toMatchObject({ ok: false });
    expect(st.periods[3].verification!.periodRows).toBe(st.periods[3].verification!.historyRows - 1);
  } finally {
    await sabotaged.stop();
  }
  expect(await schema()).toBe(before);
  expect(await rowsOf(T)).toEqual(rows);
});

test('the split under a live writer: no failed write, a partition per period, every row; rollback after cutover keeps every write', async () => {
  const writer = liveWriter();
  await waitFor(async () => writer.writes > 20, 'the writer');
  const h = await split({ batchSize: 150 });
  const report: SplitReport = await h.result();
  await new Promise((r) => setTimeout(r, 500));
  const status = await h.query(splitStatusQuery);
  expect(status.phase).toBe('done');
  // Every period copied in more than one batch, and verified equal.
  const big = report.periods.filter((p) => p.rowsCopied > 150);
  expect(big.length).toBeGreaterThan(3);
  expect(big.every((p) => p.batches > 1)).toBe(true);
  expect(report.periods.every((p) => p.state === 'verified' && p.verification!.ok)).toBe(true);
  expect(report.cutover!.lockMs).toBeLessThan(2000);
  const parts = await partitions();
  for (const p of report.periods) expect(parts).toContain(p.name);
  expect(parts).not.toContain(`${T}_history`);
  // Writes after cutover, through the new period partitions and the reverse mirror.
  await waitFor(async () => writer.writes > 400, 'writes after cutover');
  await writer.stop();
  expect(writer.errors).toEqual([]);
  expect(await rowsOf(T)).toEqual(writer.expected());
  const beforeCutoff = `occurred_at < '${cutoff}'`;
  expect(await rowsOf(`${T}_history_legacy`)).toEqual(await rowsOf(T, beforeCutoff));
  // Each period partition holds exactly its range; the application's trigger is on it.
  const p = report.periods[3];
  expect((await db.pool.query(`select count(*)::int as n from ${p.name} where occurred_at < $1 or occurred_at >= $2`, [p.from, p.to])).rows[0].n).toBe(0);
  await db.pool.query(`insert into ${T} (occurred_at) values ($1::timestamptz + interval '1 day')`, [p.from]);
  expect((await db.pool.query(`select note from ${p.name} order by id desc limit 1`)).rows[0].note).toBe('touched');

  // Rollback after cutover, under the writer again: the history partition is back with every write.
  const again = liveWriter();
  await waitFor(async () => again.writes > 50, 'the writer');
  const r = await run({ mode: 'rollback' });
  expect(r.undo).toMatchObject({ from: 'cutover' });
  await waitFor(async () => again.writes > 150, 'writes after the rollback');
  await again.stop();
  expect(again.errors).toEqual([]);
  expect(await rowsOf(T)).toEqual(again.expected());
  const back = await partitions();
  expect(back).toContain(`${T}_history`);
  for (const x of report.periods) expect(back).not.toContain(x.name);
  expect((await db.pool.query(`select pg_get_expr(relpartbound, oid) as b from pg_class where relname = $1`, [`${T}_history`])).rows[0].b).toMatch(
    /FROM \(MINVALUE\)/,
  );
});

test('a second split with retention drops the old periods; cleanup drops the kept history', async () => {
  await db.pool.query(`create table snap as select * from ${T}`);
  const report = await run({ batchSize: 500, retention: { keep: '3 months', action: 'drop' } });
  const retired = report.retention!.retired;
  expect(retired.length).toBeGreaterThan(0);
  const parts = await partitions();
  for (const a of retired) {
    expect(a.action).toBe('drop');
    expect(parts).not.toContain(a.partition);
  }
  expect(parts).toContain(`${T}_pmin`);
  // Exactly the rows of the retired periods are gone.
  const [from, to] = [retired[0].from, retired.at(-1)!.to];
  const kept = `select * from snap where not (occurred_at >= '${from}' and occurred_at < '${to}')`;
  const diff = async (a: string, b: string) => (await db.pool.query(`select count(*)::int as n from ((${a}) except all (${b})) d`)).rows[0].n;
  expect(await diff(kept, `select * from ${T}`)).toBe(0);
  expect(await diff(`select * from ${T}`, kept)).toBe(0);
  expect(await diff(`select * from snap where occurred_at >= '${from}' and occurred_at < '${to}'`, `select * from ${T}`)).toBeGreaterThan(0);
  // Until cleanup the history keeps the retired rows.
  expect(await diff(`select * from snap where occurred_at < '${cutoff}'`, `select * from ${T}_history_legacy`)).toBe(0);
  const c = await run({ mode: 'cleanup' });
  expect(c.undo!.dropped).toEqual([`${T}_history_legacy`]);
  expect((await db.pool.query(`select to_regclass($1) as r`, [`${T}_history_legacy`])).rows[0].r).toBeNull();
  expect((await db.pool.query(`select count(*)::int as n from pg_trigger where tgname = 'ps_split_back'`)).rows[0].n).toBe(0);
  // A writer's insert still lands after cleanup.
  await db.pool.query(`insert into ${T} (occurred_at) values (now() - interval '10 days')`);
});

test('every activity is safe to run again; a copy stopped mid-period resumes from its recorded position', async () => {
  await db.pool.query(`
    create table notes (id bigserial primary key, at date not null, body text);
    insert into notes (at, body) select current_date - (g % 120), 'n' || g from generate_series(1, 1200) g;
  `);
  const sw: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('attach-notes'),
    args: [
      { tables: [{ table: 'notes', partitionKey: 'at', interval: 'month' }], strategy: 'attach', backup: 'none', premake: 1, approval: { required: false } },
    ],
  });
  expect(sw.outcome).toBe('done');
  const pools = createPools({ default: db.url });
  const acts = createActivities({ pools });
  const workflowId = uniqueId('split-resume');
  const mock = new MockActivityEnvironment({ workflowExecution: { workflowId, runId: 'r1' } });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => mock.run(fn, ...a) as Promise<R>;
  try {
    const plan = await run(acts.splitPreflight, 'default', 'public', 'notes');
    // The history has no index beginning with the key: the split builds one.
    expect(plan.keyIndexExisting).toBeNull();
    for (let i = 0; i < 2; i++) await run(acts.splitPrepare, 'default', plan, 2000);
    // Autovacuum off the period tables while the copy fills them, back on with their statistics (splitIndexes).
    const paused = async () =>
      (
        await db.pool.query(`select count(*)::int as n from pg_class where relname = any($1) and reloptions @> array['autovacuum_enabled=false']`, [
          plan.periods.map((x) => x.name),
        ])
      ).rows[0].n;
    expect(await paused()).toBe(plan.periods.length);
    // A whole month of the history (pmin and the first, partial month come before it).
    const i = 2;
    const opts = { batchSize: 20, pauseMs: 30, adaptive: false, lockTimeoutMs: 2000 };
    const first = run(acts.splitCopyPeriod, 'default', plan, i, opts);
    await waitFor(
      async () =>
        (await db.pool.query(`select batches from partition_switchover.copy_progress where table_name = $1`, [plan.periods[i].name])).rows[0]?.batches >= 3,
      'three batches',
    );
    mock.cancel();
    await expect(first).rejects.toThrow();
    const mock2 = new MockActivityEnvironment({ workflowExecution: { workflowId, runId: 'r1' } });
    const again = (await mock2.run(acts.splitCopyPeriod, 'default', plan, i, opts)) as Awaited<ReturnType<typeof acts.splitCopyPeriod>>;
    expect(again.resumedFrom).not.toBeNull();
    const v = (await mock2.run(acts.splitVerifyPeriod, 'default', plan, i)) as Awaited<ReturnType<typeof acts.splitVerifyPeriod>>;
    expect(v.ok).toBe(true);
    expect(again.rowsCopied).toBe(v.periodRows);
    const rest = plan.periods.map((_, j) => j).filter((j) => j !== i);
    for (const j of rest) await mock2.run(acts.splitCopyPeriod, 'default', plan, j, opts);
    for (let k = 0; k < 2; k++) await mock2.run(acts.splitIndexes, 'default', plan, 2000);
    expect(await paused()).toBe(0);
    const cut = (await mock2.run(acts.splitCutover, 'default', plan, 2000)) as Awaited<ReturnType<typeof acts.splitCutover>>;
    expect(cut.alreadyDone).toBe(false);
    const cut2 = (await mock2.run(acts.splitCutover, 'default', plan, 2000)) as Awaited<ReturnType<typeof acts.splitCutover>>;
    expect(cut2).toMatchObject({ alreadyDone: true, lockMs: Math.round(cut.lockMs) });
    expect((await db.pool.query(`select count(*)::int as n from notes`)).rows[0].n).toBe(1200);
    // The attach switchover's own rollback refuses while the history is split.
    const refused = await failureOf(
      await w.client.workflow.start('rollback', {
        taskQueue: w.taskQueue,
        workflowId: uniqueId('rollback-notes'),
        args: [{ tables: [{ table: 'notes', partitionKey: 'at', interval: 'month' }] }],
      }),
    );
    expect(refused.chain.join(' | ')).toMatch(/notes_history is gone: its rows were split into period partitions \(splitHistory\)/);
    const rb = (await mock2.run(acts.splitRollback, 'default', plan, 2000)) as Awaited<ReturnType<typeof acts.splitRollback>>;
    expect(rb.from).toBe('cutover');
    expect(rb.dropped).toContain(plan.names.keyIndex);
    const rb2 = (await mock2.run(acts.splitRollback, 'default', plan, 2000)) as Awaited<ReturnType<typeof acts.splitRollback>>;
    expect(rb2).toMatchObject({ from: 'none', dropped: [] });
    expect((await db.pool.query(`select count(*)::int as n from notes_history`)).rows[0].n).toBe(1200);
  } finally {
    await pools.end();
  }
});
