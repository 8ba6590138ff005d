// Materialized views reading a table, carried both ways (issue 24, item 3), on the real dev
// server and database: a view owned by an application role, with a unique and a second index, a
// grant to a reader and a comment, switched over while a writer inserts: after cutover the view
// has its name, owner, grants and index names and reads the partitioned table, and its refresh
// equals a fresh query; the rollback after cutover puts the original back (same oid) reading the
// plain table; a rollback before cutover leaves nothing of ours; cleanup drops the original.
// A view reading it follows it both ways; one made on ours after cutover makes the rollback refuse,
// changing nothing. Refused at preflight: a taken name of ours, a materialized view reading it, an
// owner out of the worker's reach, the attach strategy, two switched tables read by one view; at
// cutover: an index added since. Each step run again after its answer was lost ends the same; a
// refresh failing on the rows is recorded and the switchover goes on.
import { randomBytes } from 'node:crypto';
import { approveSignal, rejectSignal } from '../src/shared';
import { switchoverInput } from '../src/input';
import { preflightPlan } from '../activities/preflight';
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../src/reports';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { databaseAndWorker, startTestWorker, uniqueId, waitFor, waitForPhase, waitForStatistics, type TestDb, type TestWorker, dropRoles } from './helpers';

const suffix = randomBytes(4).toString('hex');
const app = `mvapp_${suffix}`;
const reader = `mvreader_${suffix}`;
let db: TestDb;
let w: TestWorker;

databaseAndWorker((d, x) => ([db, w] = [d, x]));

beforeAll(async () => {
  await db.pool.query(`create role ${app} nologin; create role ${reader} nologin`);
});
afterAll(async () => {
  await dropRoles(app, reader);
});

const one = async (text: string, params: unknown[] = []) => (await db.pool.query(text, params)).rows[0];

/** Schema `s` with `s.t` and the materialized view `s.t_daily`, both the app role's; the reader may select the view. */
async function makeSchema(s: string): Promise<void> {
  await db.pool.query(`create schema ${s}; grant usage, create on schema ${s} to ${app}; grant usage on schema ${s} to ${reader}`);
  const c = await db.pool.connect();
  try {
    await c.query(`set role ${app}`);
    await c.query(`create table ${s}.t (id bigserial primary key, at timestamptz not null, amount bigint not null)`);
    await c.query(`insert into ${s}.t (at, amount) select now() - (g % 90) * interval '1 day', g from generate_series(1, 400) g`);
    await c.query(`create materialized view ${s}.t_daily as select date_trunc('day', at) as day, count(*) as n, sum(amount) as total from ${s}.t group by 1`);
    await c.query(`create unique index t_daily_day on ${s}.t_daily (day)`);
    await c.query(`create index t_daily_total on ${s}.t_daily (total) where total > 0`);
    await c.query(`grant select on ${s}.t_daily to ${reader}`);
    await c.query(`comment on materialized view ${s}.t_daily is 'per day'`);
    await c.query(`create view ${s}.t_busy as select day, n from ${s}.t_daily where n > 4`);
    await c.query(`grant select on ${s}.t_busy to ${reader}`);
  } finally {
    await c.query('reset role');
    c.release();
  }
}

/** A writer inserting as the app role until stopped; resolves to its inserts and failures. */
function writer(s: string): { stop(): Promise<{ inserts: number; failures: string[] }> } {
  let running = true;
  const done = (async () => {
    const c = await db.pool.connect();
    const out = { inserts: 0, failures: [] as string[] };
    try {
      await c.query(`set role ${app}`);
      while (running) {
        await c.query(`insert into ${s}.t (at, amount) values (now() - random() * interval '60 days', 5)`).then(
          () => out.inserts++,
          (e: Error) => out.failures.push(e.message),
        );
        await new Promise((r) => setTimeout(r, 15));
      }
    } finally {
      await c.query('reset role').catch(() => undefined);
      c.release();
    }
    return out;
  })();
  return {
    async stop() {
      running = false;
      return done;
    },
  };
}

/** The materialized view `s.name`: owner, grants, comment, index names, what it reads (relkind) and its oid. */
async function describe(s: string, name: string) {
  return one(
    `select c.oid::bigint::text as oid, pg_get_userbyid(c.relowner) as owner, c.relacl::text[] as acl, obj_description(c.oid, 'pg_class') as comment,
            array(select i.relname::text from pg_index x join pg_class i on i.oid = x.indexrelid where x.indrelid = c.oid order by 1) as indexes,
            array(select distinct d.refobjid::regclass::text || ':' || r.relkind::text from pg_depend d join pg_rewrite w on w.oid = d.objid join pg_class r on r.oid = d.refobjid
                  where d.classid = 'pg_rewrite'::regclass and w.ev_class = c.oid and d.refobjid <> c.oid) as reads
     from pg_class c where c.oid = to_regclass($1)`,
    [`${s}.${name}`],
  );
}

/** The oids of the relations a view's rule reads. */
const readsOf = async (view: string) =>
  (
    await db.pool.query(
      `select distinct d.refobjid::bigint::text as oid from pg_depend d join pg_rewrite w on w.oid = d.objid
       where d.classid = 'pg_rewrite'::regclass and w.ev_class = $1::regclass and d.refobjid <> $1::regclass`,
      [view],
    )
  ).rows.map((r) => r.oid);

const ours = async (s: string) =>
  (
    await db.pool.query(
      `select relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and relname ~ '(_ps_new|_legacy)$' order by 1`,
      [s],
    )
  ).rows.map((r) => r.relname);

const fresh = (s: string) => `select date_trunc('day', at) as day, count(*) as n, sum(amount) as total from ${s}.t group by 1 order by 1`;

const start = (s: string, approval: boolean) =>
  w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(s),
    args: [{ schema: s, tables: [{ table: 't', partitionKey: 'at', interval: 'month' }], approval: { required: approval, verifyEvery: '1s' }, backup: 'none' }],
  });

/** The last refresh of ours recorded for `s.t_daily` by the workflow: when, and the error if it failed. */
const lastRefresh = async (s: string, workflowId: string) =>
  (await one(`select details from partition_switchover.audit where workflow_id = $1 and stage = $2`, [workflowId, `MATVIEW REFRESH ${s}.t_daily`]))?.details;

const rollback = (switchoverWorkflowId: string) =>
  w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId('rb'), args: [{ switchoverWorkflowId }] }) as Promise<RollbackReport>;

test('switched over with a writer running: same name, owner, grants, comment and indexes, reading the partitioned table; the rollback puts the original back', async () => {
  const s = 'mv1';
  await makeSchema(s);
  const original = await describe(s, 't_daily');
  const load = writer(s);
  const handle = await start(s, true);
  const waiting = await waitForPhase(handle, 'awaiting_approval', 120000).then(() => waitForStatistics(handle));
  expect(JSON.stringify(waiting)).toContain(`materialized view ${s}.t_daily reads ${s}.t: ${s}.t_daily_ps_new is built over t_partitioned`);
  // Built while approval waits, as the owner, reading the partitioned copy.
  expect(await describe(s, 't_daily_ps_new')).toMatchObject({
    owner: app,
    reads: [`${s}.t_partitioned:p`],
    indexes: ['t_daily_day_ps_new', 't_daily_total_ps_new'],
  });
  // Refreshed while approval waits (each comparison of the rows written), then again right before the cutover's lock (cheap).
  await waitFor(async () => (await lastRefresh(s, handle.workflowId))?.when === 'waiting', 'a refresh while approval waits');
  expect(await lastRefresh(s, handle.workflowId)).toEqual({ refreshed: `${s}.t_daily_ps_new`, when: 'waiting' });
  await handle.signal(approveSignal, { by: 'dba' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  expect(await lastRefresh(s, handle.workflowId)).toEqual({ refreshed: `${s}.t_daily_ps_new`, when: 'cutover' });
  const { inserts, failures } = await load.stop();
  expect(failures).toEqual([]);
  expect(inserts).toBeGreaterThan(0);

  const after = await describe(s, 't_daily');
  // The view reading it reads ours now (by oid), and the reader still reads through it.
  expect(await readsOf(`${s}.t_busy`)).toEqual([after.oid]);
  expect(after).toEqual({ ...original, oid: expect.any(String), reads: [`${s}.t:p`] });
  expect(after.oid).not.toBe(original.oid);
  expect(await describe(s, 't_daily_legacy')).toMatchObject({
    oid: original.oid,
    reads: [`${s}.t_legacy:r`],
    indexes: ['t_daily_day_legacy', 't_daily_total_legacy'],
  });
  // The owner refreshes it as the application does (concurrently: its unique index came along), the reader reads it.
  const c = await db.pool.connect();
  try {
    await c.query(`set role ${app}`);
    await c.query(`refresh materialized view concurrently ${s}.t_daily`);
    await c.query(`reset role; set role ${reader}`);
    expect((await c.query(`select * from ${s}.t_daily order by day`)).rows).toEqual((await db.pool.query(fresh(s))).rows);
    expect((await c.query(`select * from ${s}.t_busy order by day`)).rows).toEqual(
      (await db.pool.query(fresh(s))).rows.filter((r) => Number(r.n) > 4).map((r) => ({ day: r.day, n: r.n })),
    );
  } finally {
    await c.query('reset role');
    c.release();
  }

  // A view made on it since cutover reads ours, which the rollback drops: refused at once, nothing changed, then done once it is dropped.
  await db.pool.query(`create view ${s}.t_daily_all as select * from ${s}.t_daily`);
  const refused = await rollback(handle.workflowId).then(
    () => '',
    (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
  );
  expect(refused).toContain(
    `rollback of ${s}.t refused: view ${s}.t_daily_all reads ${s}.t_daily, the materialized view built over the partitioned table, which the rollback drops ` +
      `(the original takes its name back). Nothing was changed. Run DROP VIEW ${s}.t_daily_all; then the rollback again`,
  );
  expect(await describe(s, 't_daily')).toEqual({ ...after, reads: [`${s}.t:p`] });
  await db.pool.query(`drop view ${s}.t_daily_all`);
  const rb = await rollback(handle.workflowId);
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect(await describe(s, 't_daily')).toEqual({ ...original, reads: [`${s}.t:r`] });
  expect(await readsOf(`${s}.t_busy`)).toEqual([original.oid]);
  expect(await ours(s)).toEqual([]);
  expect(await one(`select to_regclass('${s}.t_partitioned') as p`)).toEqual({ p: null });
  await db.pool.query(`refresh materialized view concurrently ${s}.t_daily`);
  expect((await db.pool.query(`select * from ${s}.t_daily order by day`)).rows).toEqual((await db.pool.query(fresh(s))).rows);
});

test('rejected while approval waits: nothing of ours is left, the original untouched; without approval, cleanup drops the original', async () => {
  const s = 'mv2';
  await makeSchema(s);
  const original = await describe(s, 't_daily');
  const handle = await start(s, true);
  await waitForPhase(handle, 'awaiting_approval', 120000).then(() => waitForStatistics(handle));
  expect(await ours(s)).toEqual(['t_daily_day_ps_new', 't_daily_ps_new', 't_daily_total_ps_new']);
  await handle.signal(rejectSignal, { by: 'dba', reason: 'not today' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('rejected');
  expect(await describe(s, 't_daily')).toEqual(original);
  expect(await ours(s)).toEqual([]);

  const again = await start(s, false);
  expect(((await again.result()) as SwitchoverReport).outcome).toBe('done');
  const cleaned: SwitchoverReport = await w.client.workflow.execute('cleanup', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('cl'),
    args: [{ schema: s, tables: ['t'] }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  expect(await ours(s)).toEqual([]);
  expect(await describe(s, 't_daily')).toMatchObject({ owner: app, reads: [`${s}.t:p`], indexes: ['t_daily_day', 't_daily_total'] });
});

test('refused at preflight, nothing changed: a name of ours already taken, a materialized view reading the materialized view', async () => {
  const s = 'mv3';
  await makeSchema(s);
  await db.pool.query(`create table ${s}.t_daily_ps_new (x int); create materialized view ${s}.t_daily_top as select * from ${s}.t_daily where n > 1`);
  const failed = await start(s, false).then((h) =>
    h.result().then(
      () => '',
      (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
    ),
  );
  expect(failed).toContain(
    `materialized view ${s}.t_daily reads ${s}.t, and materialized view ${s}.t_daily_top reads it: at cutover ${s}.t_daily is replaced by one built over the partitioned table, ` +
      `and that would keep reading the old one (${s}.t_daily_legacy then), which cleanup drops. Run DROP MATERIALIZED VIEW ${s}.t_daily_top; before the switchover and make it again after it`,
  );
  await db.pool.query(`drop materialized view ${s}.t_daily_top`);
  const taken = await start(s, false).then((h) =>
    h.result().then(
      () => '',
      (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
    ),
  );
  expect(taken).toContain(
    `${s}.t_daily_ps_new already exists; the switchover of ${s}.t would create it as the new materialized view t_daily before cutover. Rename or drop it`,
  );
  expect(await one(`select relkind::text as k, to_regclass('${s}.t_partitioned') as p from pg_class where oid = '${s}.t'::regclass`)).toEqual({
    k: 'r',
    p: null,
  });
});

test('another schema, an alias and a join, WITH NO DATA, through a view: each carried or left alone as it needs; cleanup completes', async () => {
  const s = 'mv4';
  await makeSchema(s);
  await db.pool.query(`
    create schema "Rep x";
    create table ${s}.kinds (k int primary key, label text not null);
    insert into ${s}.kinds values (0, 'even'), (1, 'odd');
    create materialized view "Rep x"."By Kind" as select k.label, count(*) as n from ${s}.t x join ${s}.kinds k on k.k = x.amount % 2 group by k.label;
    create materialized view "Rep x".later as select max(at) as last from ${s}.t with no data;
    create view ${s}.t_recent as select id, amount from ${s}.t where amount > 100;
    create materialized view "Rep x".via_view as select count(*) as n from ${s}.t_recent;`);
  const handle = await start(s, false);
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  expect(await describe('"Rep x"', '"By Kind"')).toMatchObject({ reads: [`${s}.kinds:r`, `${s}.t:p`] });
  expect(await describe('"Rep x"', 'later')).toMatchObject({ reads: [`${s}.t:p`] });
  expect(await one(`select relispopulated as p from pg_class where oid = '"Rep x".later'::regclass`)).toEqual({ p: false });
  // Through the view: the same materialized view, reading the view, which now reads the partitioned table.
  expect(await describe('"Rep x"', 'via_view')).toMatchObject({ reads: [`${s}.t_recent:v`] });
  await db.pool.query(`insert into ${s}.t (at, amount) values (now(), 1001)`);
  for (const v of ['"By Kind"', 'later', 'via_view']) await db.pool.query(`refresh materialized view "Rep x".${v}`);
  expect((await db.pool.query(`select * from "Rep x"."By Kind" order by label`)).rows).toEqual(
    (await db.pool.query(`select k.label, count(*) as n from ${s}.t x join ${s}.kinds k on k.k = x.amount % 2 group by k.label order by label`)).rows,
  );
  expect(await one(`select (select n from "Rep x".via_view) = (select count(*) from ${s}.t where amount > 100) as same`)).toEqual({ same: true });
  const cleaned: SwitchoverReport = await w.client.workflow.execute('cleanup', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('cl'),
    args: [{ schema: s, tables: ['t'] }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  expect(await ours('Rep x')).toEqual([]);
  expect(await ours(s)).toEqual([]);
});

test('a materialized view reading two tables of one switchover is refused, naming both', async () => {
  await db.pool.query(`
    create schema mv5;
    create table mv5.a (id bigint primary key, at timestamptz not null);
    create table mv5.b (id bigint primary key, at timestamptz not null);
    create materialized view mv5.ab as select count(*) as n from mv5.a join mv5.b using (id);`);
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('mv5'),
    args: [{ schema: 'mv5', tables: ['a', 'b'].map((table) => ({ table, partitionKey: 'at', interval: 'month' })), approval: { required: false } }],
  });
  const failed = await h.result().then(
    () => '',
    (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
  );
  expect(failed).toContain('materialized view mv5.ab reads both mv5.a and mv5.b, which this switchover both moves');
  expect(await one(`select to_regclass('mv5.a_partitioned') as a, to_regclass('mv5.ab_ps_new') as m`)).toEqual({ a: null, m: null });
});

test('refused at preflight: an owner the worker cannot act as, and the attach strategy', async () => {
  const s = 'mv6';
  await makeSchema(s);
  const [other, worker] = [`mvother_${suffix}`, `mvworker_${suffix}`];
  await db.pool.query(`create role ${other} nologin; create role ${worker} nologin in role ${app}; grant usage, create on schema ${s} to ${other}`);
  await db.pool.query(`grant select on ${s}.t to ${other}; alter materialized view ${s}.t_daily owner to ${other}`);
  const c = await db.pool.connect();
  const refusal = async (input: Record<string, unknown>) =>
    preflightPlan(c, switchoverInput.parse({ schema: s, tables: [{ table: 't', partitionKey: 'at', interval: 'month' }], ...input })).then(
      () => '',
      (e: Error) => e.message,
    );
  try {
    await c.query(`set role ${worker}`);
    expect(await refusal({})).toContain(
      `materialized view ${s}.t_daily reads ${s}.t and is owned by role ${other}, and the worker's role ${worker} is neither superuser nor a member of it, ` +
        `so it cannot build the new one as ${other}; run GRANT "${other}" TO "${worker}" and start again`,
    );
    await c.query('reset role');
    expect(await refusal({ strategy: 'attach' })).toContain(
      `materialized view ${s}.t_daily reads ${s}.t, and the attach strategy does not carry materialized views (the table becomes its history partition, ` +
        `so ${s}.t_daily would go on reading only the rows before the cutoff). Use "strategy": "copy", which carries it`,
    );
  } finally {
    await c.query('reset role');
    c.release();
    await db.pool.query(`drop schema ${s} cascade; drop owned by ${other}, ${worker}; drop role ${other}; drop role ${worker}`);
  }
});

test('an index added to the materialized view while approval waits: the cutover refuses naming it, and the switchover rolls back', async () => {
  const s = 'mv7';
  await makeSchema(s);
  const original = await describe(s, 't_daily');
  const handle = await start(s, true);
  await waitForPhase(handle, 'awaiting_approval', 120000).then(() => waitForStatistics(handle));
  await db.pool.query(`create index t_daily_n on ${s}.t_daily (n)`);
  await handle.signal(approveSignal, { by: 'dba' });
  const failed = await handle.result().then(
    () => '',
    (e: Error & { cause?: Error }) => `${e.message} ${e.cause?.message ?? ''}`,
  );
  expect(failed).toContain(`cutover of ${s}.t refused: since verification, index t_daily_n was added to materialized view ${s}.t_daily. Nothing was changed`);
  expect(await describe(s, 't_daily')).toEqual({ ...original, indexes: ['t_daily_day', 't_daily_n', 't_daily_total'] });
  expect(await ours(s)).toEqual([]);
  expect(await one(`select relkind::text as k, to_regclass('${s}.t_partitioned') as p from pg_class where oid = '${s}.t'::regclass`)).toEqual({
    k: 'r',
    p: null,
  });
});

test('each step again after it ran (its answer lost): the build, the cutover and the rollback find their work done in the catalog', async () => {
  const s = 'mv8';
  await makeSchema(s);
  const original = await describe(s, 't_daily');
  // A worker whose build (analyze), cutover and rollback each fail once right after they ran: Temporal retries them.
  const again = new Set(['analyzeTable', 'cutoverTable', 'rollbackTable']);
  const failed = new Set<string>();
  const w2 = await startTestWorker({ default: db.url }, undefined, {
    wrapActivities: (acts) =>
      Object.fromEntries(
        Object.entries(acts).map(([name, fn]) => [
          name,
          async (...args: unknown[]) => {
            const out = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
            const key = `${Context.current().info.workflowExecution?.workflowId}/${name}`;
            if (again.has(name) && !failed.has(key)) {
              failed.add(key);
              throw ApplicationFailure.retryable(`answer of ${name} lost`, 'Injected');
            }
            return out;
          },
        ]),
      ) as typeof acts,
  });
  try {
    const id = uniqueId(s);
    const r: SwitchoverReport = await w2.client.workflow.execute('switchover', {
      taskQueue: w2.taskQueue,
      workflowId: id,
      args: [{ schema: s, tables: [{ table: 't', partitionKey: 'at', interval: 'month' }], approval: { required: false }, backup: 'none' }],
    });
    expect(r.outcome).toBe('done');
    expect(await describe(s, 't_daily')).toEqual({ ...original, oid: expect.any(String), reads: [`${s}.t:p`] });
    expect(await ours(s)).toEqual(['t_daily_day_legacy', 't_daily_legacy', 't_daily_total_legacy', 't_legacy', 't_pkey_legacy']);
    const rb: RollbackReport = await w2.client.workflow.execute('rollback', {
      taskQueue: w2.taskQueue,
      workflowId: uniqueId('rb'),
      args: [{ switchoverWorkflowId: id }],
    });
    // Its retry found the table plain again: the first attempt had done it all.
    expect(rb.tables.map((t) => t.from)).toEqual(['plain']);
    expect(await describe(s, 't_daily')).toEqual({ ...original, reads: [`${s}.t:r`] });
    expect(await ours(s)).toEqual([]);
    expect([...failed].map((k) => k.split('/')[1]).sort()).toEqual(['analyzeTable', 'cutoverTable', 'rollbackTable']);
  } finally {
    await w2.stop();
  }
});

test("a refresh that fails on today's rows (as the application's own would) is recorded, and the switchover goes on with ours as of its last refresh", async () => {
  const s = 'mv9';
  await db.pool.query(`
    create schema ${s};
    create table ${s}.t (id bigserial primary key, at timestamptz not null, amount bigint not null);
    insert into ${s}.t (at, amount) select now() - (g % 90) * interval '1 day', g from generate_series(1, 100) g;
    create materialized view ${s}.t_ratio as select 1000 / min(amount) as r from ${s}.t;`);
  const handle = await start(s, true);
  await waitForPhase(handle, 'awaiting_approval', 120000).then(() => waitForStatistics(handle));
  await db.pool.query(`insert into ${s}.t (at, amount) values (now(), 0)`);
  const failed = async () =>
    (await one(`select details from partition_switchover.audit where workflow_id = $1 and stage = $2`, [handle.workflowId, `MATVIEW REFRESH ${s}.t_ratio`]))
      ?.details;
  await waitFor(async () => (await failed())?.error, 'a failed refresh while approval waits');
  expect(await failed()).toEqual({ refreshed: `${s}.t_ratio_ps_new`, when: 'waiting', error: 'division by zero' });
  await handle.signal(approveSignal, { by: 'dba' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  expect(await failed()).toEqual({ refreshed: `${s}.t_ratio_ps_new`, when: 'cutover', error: 'division by zero' });
  expect(await one(`select r::int as r from ${s}.t_ratio`)).toEqual({ r: 1000 });
  await expect(db.pool.query(`refresh materialized view ${s}.t_ratio`)).rejects.toThrow(/division by zero/);
});
