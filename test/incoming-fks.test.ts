// Foreign keys into the table (issue 24, item 4): a rental table referenced by payment (ON DELETE
// CASCADE, owned by another role) and late_fee (DEFERRABLE INITIALLY DEFERRED) switched over with
// writers on both; after cutover the keys are enforced through rental_keys with their semantics,
// and the rollback (after cutover, before it) restores the original foreign keys. Real PostgreSQL,
// real dev server.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../src/reports';
import { createTestDb, startTestWorker, uniqueId, waitForPhase, type TestDb, type TestWorker, dropRoles } from './helpers';
import { dump, failureOf } from './failure-helpers';

let db: TestDb;
let w: TestWorker;
const role = `ps_fk_owner_${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`create role ${role}`);
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
  await dropRoles(role);
});

const one = async (text: string, params: unknown[] = []) => (await db.pool.query(text, params)).rows[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `<t>` (300 rentals over 300 days, or `rows`), `<t>_payment` (2 per rental of the first 300, ON DELETE CASCADE, owned by another role), `<t>_fee` (ON UPDATE CASCADE, deferred). */
async function schema(t: string, rows = 300) {
  await db.pool.query(`
    create table ${t} (id bigserial primary key, rented_at timestamptz not null, amount_cents bigint not null);
    insert into ${t} (rented_at, amount_cents) select now() - (g % 300) * interval '1 day', g from generate_series(1, ${rows}) g;
    create table ${t}_payment (id bigserial primary key, rental_id bigint not null references ${t} (id) on delete cascade, amount_cents bigint not null);
    insert into ${t}_payment (rental_id, amount_cents) select g % 300 + 1, g from generate_series(1, 600) g;
    alter table ${t}_payment owner to ${role};
    create table ${t}_fee (id bigserial primary key, rental_id bigint references ${t} (id) on update cascade deferrable initially deferred);
    insert into ${t}_fee (rental_id) select g from generate_series(1, 300, 7) g;
    create view ${t}_paid as select r.id, sum(p.amount_cents) as paid from ${t} r join ${t}_payment p on p.rental_id = r.id group by r.id;`);
}

/** The foreign keys into `<t>` (or its key table) as the catalog has them: name, target, definition with the target's name cut, validated. */
async function fks(t: string) {
  const r = await db.pool.query(
    `select conname::text as name, confrelid::regclass::text as target, convalidated as validated,
            regexp_replace(pg_get_constraintdef(oid), 'REFERENCES [^(]+', 'REFERENCES _') as def
     from pg_constraint where contype = 'f' and conrelid in ($1::regclass, $2::regclass) order by 1`,
    [`${t}_payment`, `${t}_fee`],
  );
  return r.rows;
}

/** A writer: `step` in a loop on its own connection until stopped; failures counted with their messages. */
function writer(setup: string, step: (c: pg.Client, i: number) => Promise<unknown>) {
  const c = new pg.Client({ connectionString: db.url, application_name: 'ps-test-writer' });
  const failures: string[] = [];
  let ops = 0;
  let stop = false;
  const done = (async () => {
    await c.connect();
    if (setup) await c.query(setup);
    for (let i = 0; !stop; i++) {
      try {
        await step(c, i);
        ops++;
      } catch (err) {
        failures.push((err as Error).message);
        await c.query('rollback').catch(() => undefined);
      }
      await sleep(3);
    }
    await c.end();
  })();
  return {
    failures,
    ops: () => ops,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

async function switchover(t: string, extra: Record<string, unknown> = {}) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(t),
    args: [{ tables: [{ table: t, partitionKey: 'rented_at', interval: 'month' }], backup: 'none', batchSize: 50, ...extra }],
  });
}

const sqlstate = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

test('switched over under writers on both tables: the keys table enforces the foreign keys with their actions; the rollback after cutover restores them', async () => {
  await schema('rental');
  const original = await fks('rental');
  expect(original.map((f: { target: string }) => f.target)).toEqual(['rental', 'rental']);
  // The payment writer runs as the payment table's owner (no right on rental or its key table) and
  // only names rentals that are never deleted; the rental writer inserts (with a payment), moves
  // rows across months and deletes what it inserted.
  const payments = writer(`set role ${role}`, (c, i) => c.query(`insert into rental_payment (rental_id, amount_cents) values ($1, 1)`, [(i % 300) + 1]));
  const mine: string[] = [];
  const rentals = writer('', async (c, i) => {
    if (i % 3 === 2 && mine.length > 2) return c.query(`delete from rental where id = $1`, [mine.shift()]);
    if (i % 5 === 4) return c.query(`update rental set rented_at = rented_at + interval '35 days' where id = $1`, [(i % 300) + 1]);
    await c.query('begin');
    const id = (await c.query(`insert into rental (rented_at, amount_cents) values (now() - ($1 % 200) * interval '1 day', 5) returning id`, [i])).rows[0].id;
    await c.query(`insert into rental_payment (rental_id, amount_cents) values ($1, -2)`, [id]);
    await c.query('commit');
    mine.push(id);
  });
  await sleep(300);
  const handle = await switchover('rental', { approval: { required: false } });
  const report = (await handle.result()) as SwitchoverReport;
  await sleep(300);
  await payments.stop();
  await rentals.stop();
  expect(report.outcome).toBe('done');
  expect(payments.failures).toEqual([]);
  expect(rentals.failures).toEqual([]);
  expect(payments.ops()).toBeGreaterThan(20);

  // Re-pointed at rental_keys under their names, same actions and deferrability, validated.
  expect(await fks('rental')).toEqual(original.map((f: object) => ({ ...f, target: 'rental_keys' })));
  expect(await one(`select relkind::text as k from pg_class where oid = 'rental'::regclass`)).toEqual({ k: 'p' });
  // The key table holds exactly the table's keys.
  const n = await one(`select (select count(*) from rental_keys)::int as keys, (select count(*) from rental)::int as rows,
    (select count(*) from (select id from rental except select id from rental_keys) x)::int as missing,
    (select count(*) from (select id from rental_keys except select id from rental) x)::int as extra`);
  expect(n).toEqual({ keys: n.rows, rows: expect.any(Number), missing: 0, extra: 0 });
  // No payment lost to a move: every payment of the never-deleted rentals is there.
  expect((await one(`select count(*)::int as n from rental_payment where rental_id <= 300 and amount_cents > 0`)).n).toBe(600 + payments.ops());

  // The view over both tables reads the partitioned one.
  expect(
    await one(`select count(*) > 0 as reads from pg_depend d join pg_rewrite w on w.oid = d.objid
    where w.ev_class = 'rental_paid'::regclass and d.refobjid = 'rental'::regclass`),
  ).toEqual({ reads: true });
  const paid = async () => one(`select count(*)::int as n, sum(paid)::text as s from rental_paid`);
  expect(await paid()).toEqual(await one(`select count(distinct rental_id)::int as n, sum(amount_cents)::text as s from rental_payment`));
  // A payment for a missing rental fails; a duplicate id in another partition fails (here the mirror
  // to rental_legacy refuses it first; after cleanup rental_keys does: next test); a delete cascades.
  expect(await sqlstate(db.pool.query(`insert into rental_payment (rental_id, amount_cents) values (987654321, 1)`))).toBe('23503');
  expect(await sqlstate(db.pool.query(`insert into rental (id, rented_at, amount_cents) values (7, now() - interval '250 days', 1)`))).toBe('23505');
  expect((await one(`select count(*)::int as n from rental_payment where rental_id = 9`)).n).toBeGreaterThan(0);
  await db.pool.query(`delete from rental where id = 9`);
  expect(await one(`select count(*)::int as n from rental_payment where rental_id = 9`)).toEqual({ n: 0 });
  // A move to another partition keeps the key (and its payments).
  const ten = await one(`select count(*)::int as n from rental_payment where rental_id = 10`);
  expect(ten.n).toBeGreaterThan(0);
  await db.pool.query(`update rental set rented_at = rented_at - interval '70 days' where id = 10`);
  expect(await one(`select count(*)::int as n from rental_payment where rental_id = 10`)).toEqual(ten);
  expect((await one(`select count(*)::int as n from rental_keys where id = 10`)).n).toBe(1);
  // Deferred: a fee may name a rental made later in its transaction; one that never comes fails at commit.
  const c = await db.pool.connect();
  try {
    await c.query(
      `begin; insert into rental_fee (rental_id) values (900001); insert into rental (id, rented_at, amount_cents) values (900001, now(), 1); commit`,
    );
    await c.query(`begin; insert into rental_fee (rental_id) values (900002)`);
    expect(await sqlstate(c.query('commit'))).toBe('23503');
  } finally {
    c.release();
  }
  // An id update: ON UPDATE CASCADE moves the fee with it (and the key); the payment's NO ACTION refuses one it references, as before.
  await db.pool.query(`update rental set id = 900003 where id = 900001`);
  expect(await one(`select array_agg(rental_id order by rental_id)::text as ids from rental_fee where rental_id in (900001, 900003)`)).toEqual({
    ids: '{900003}',
  });
  expect(await one(`select array_agg(id order by id)::text as ids from rental_keys where id in (900001, 900003)`)).toEqual({ ids: '{900003}' });
  expect(await sqlstate(db.pool.query(`update rental set id = 900004 where id = 8`))).toBe('23503');

  const rows = await one(`select count(*)::int as n, sum(amount_cents)::text as s from rental`);
  const viewed = await paid();
  const rb = (await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('rb'),
    args: [{ switchoverWorkflowId: handle.workflowId }],
  })) as RollbackReport;
  expect(rb.tables.map((t) => [t.from, t.left ?? []])).toEqual([['cutover', []]]);
  // The original foreign keys, on the plain table, validated; the key table and its function gone; the rows the mirror kept.
  expect(await one(`select relkind::text as k from pg_class where oid = 'rental'::regclass`)).toEqual({ k: 'r' });
  expect(await fks('rental')).toEqual(original);
  expect(await one(`select to_regclass('rental_keys') as k, to_regprocedure('rental_ps_keys()') as f`)).toEqual({ k: null, f: null });
  expect(await one(`select count(*)::int as n, sum(amount_cents)::text as s from rental`)).toEqual(rows);
  expect(await paid()).toEqual(viewed);
  // The plain table's key enforces again: a payment for a missing rental fails, a delete cascades.
  expect(await sqlstate(db.pool.query(`insert into rental_payment (rental_id, amount_cents) values (987654321, 1)`))).toBe('23503');
  await db.pool.query(`delete from rental where id = 11`);
  expect(await one(`select count(*)::int as n from rental_payment where rental_id = 11`)).toEqual({ n: 0 });
});

test('a rollback before cutover (reject) leaves nothing of ours: the schema is as it was, the foreign keys untouched', async () => {
  // More keys than one fill batch (5,000).
  await schema('lease', 12000);
  const before = await dump(db.url, { schemaOnly: true });
  const oids = (await db.pool.query(`select oid::int from pg_constraint where confrelid = 'lease'::regclass order by 1`)).rows;
  // A writer from before prepare on: inserts, deletes and id updates racing the key table's fill.
  const writes = writer('', (c, i) =>
    i % 3 === 0
      ? c.query(`insert into lease (rented_at, amount_cents) values (now(), 3)`)
      : i % 3 === 1
        ? c.query(`delete from lease where id = $1`, [301 + ((i * 37) % 11000)])
        : c.query(`update lease set id = id + 1000000 where id = $1`, [301 + ((i * 53) % 11000)]),
  );
  const handle = await switchover('lease', { batchSize: 2000 });
  await waitForPhase(handle, 'awaiting_approval');
  await writes.stop();
  expect(writes.failures).toEqual([]);
  expect(writes.ops()).toBeGreaterThan(30);
  // While approval waits, and after the writer: the key table holds exactly the table's keys.
  await db.pool.query(`insert into lease (rented_at, amount_cents) values (now(), 1); delete from lease where id = 5`);
  expect(
    await one(`select (select count(*) from lease_keys)::int as keys, (select count(*) from lease)::int as rows,
      (select count(*) from (select id from lease except select id from lease_keys) x)::int as missing,
      (select count(*) from (select id from lease_keys except select id from lease) x)::int as extra`),
  ).toEqual({ keys: expect.any(Number), rows: expect.any(Number), missing: 0, extra: 0 });
  const plan = (await handle.query(statusQuery)).plan!.tables[0];
  expect(plan.warnings.join('\n')).toMatch(
    /Cost per write from prepare on \(measured: npm run bench:keytable\): each INSERT into public\.lease adds one row to lease_keys/,
  );
  await handle.signal(rejectSignal, { by: 'bob', reason: 'not today' });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('rejected');
  expect(await dump(db.url, { schemaOnly: true })).toEqual(before);
  expect((await db.pool.query(`select oid::int from pg_constraint where confrelid = 'lease'::regclass order by 1`)).rows).toEqual(oids);
});

test('refused at preflight, changing nothing: the key table name taken, a foreign key on other columns than the primary key, on a partitioned table or on a table of the same run; attach refuses', async () => {
  await db.pool.query(`
    create table deposit (id bigint primary key, at date not null, unique (id, at));
    create table deposit_keys (x int);
    create table deposit_ref (d bigint, d_at date, foreign key (d, d_at) references deposit (id, at));
    create table deposit_log (d bigint references deposit (id), at date not null) partition by range (at);
    create table deposit_log2 (id bigint primary key, d bigint references deposit (id), at date not null);`);
  const before = await dump(db.url, { schemaOnly: true });
  const f = await failureOf(
    await w.client.workflow.start('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId('refuse'),
      args: [{ tables: [{ table: 'deposit', partitionKey: 'at', interval: 'month' }] }],
    }),
  );
  expect(f.type).toBe('UnsupportedSchema');
  expect(f.message).toMatch(/foreign key deposit_ref_d_d_at_fkey on public\.deposit_ref references public\.deposit \(at, id\), not its primary key \(id\)/);
  expect(f.message).toMatch(/ALTER TABLE "public"\."deposit_ref" DROP CONSTRAINT "deposit_ref_d_d_at_fkey"/);
  expect(f.message).toMatch(
    /foreign key deposit_log_d_fkey on public\.deposit_log references public\.deposit: public\.deposit_log is partitioned, and PostgreSQL cannot add a NOT VALID foreign key/,
  );
  expect(f.message).toMatch(/public\.deposit_keys already exists; the switchover of public\.deposit would create it as the key table/);
  const a = await failureOf(
    await w.client.workflow.start('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId('refuse'),
      args: [{ tables: [{ table: 'deposit', partitionKey: 'at', interval: 'month' }], strategy: 'attach' }],
    }),
  );
  expect(a.message).toMatch(/foreign key deposit_ref_d_d_at_fkey on deposit_ref references public\.deposit; the attach strategy .* or use the copy strategy/);
  // Both sides in one run: the referenced table first, the referencing one in another run.
  const both = await failureOf(
    await w.client.workflow.start('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId('refuse'),
      args: [{ tables: ['deposit', 'deposit_log2'].map((table) => ({ table, partitionKey: 'at', interval: 'month' })), dryRun: true }],
    }),
  );
  expect(both.message).toMatch(
    /foreign key deposit_log2_d_fkey on public\.deposit_log2 references public\.deposit, and both are switched over in this run: .* Switch over public\.deposit first, then public\.deposit_log2 in another run/,
  );
  expect(await dump(db.url, { schemaOnly: true })).toEqual(before);
});

test('after cleanup the key table stays and keeps the old key: a duplicate id in another partition fails on it', async () => {
  await schema('hire');
  // The table itself owned by another role than the worker's: so is its key table (a foreign key check reads it as its owner).
  await db.pool.query(`alter table hire owner to ${role}`);
  const handle = await switchover('hire', { approval: { required: false } });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  await w.client.workflow.execute('cleanup', { taskQueue: w.taskQueue, workflowId: uniqueId('clean'), args: [{ tables: ['hire'] }] });
  expect(await one(`select to_regclass('hire_legacy') as l, to_regclass('hire_keys')::text as k`)).toEqual({ l: null, k: 'hire_keys' });
  expect(await one(`select relowner::regrole::text as owner from pg_class where oid = 'hire_keys'::regclass`)).toEqual({ owner: role });
  // A writer of payments as that role: the checks pass and fail as before.
  const c = await db.pool.connect();
  try {
    await c.query(`set role ${role}`);
    await c.query(`insert into hire_payment (rental_id, amount_cents) values (5, 1)`);
    expect(await sqlstate(c.query(`insert into hire_payment (rental_id, amount_cents) values (987654321, 1)`))).toBe('23503');
  } finally {
    await c.query('reset role');
    c.release();
  }
  const dup = await db.pool.query(`insert into hire (id, rented_at, amount_cents) values (7, now() - interval '250 days', 1)`).catch((e) => e);
  expect([dup.code, dup.constraint, dup.detail]).toEqual(['23505', 'hire_keys_pkey', 'Key (id)=(7) already exists.']);
  expect(await sqlstate(db.pool.query(`insert into hire_payment (rental_id, amount_cents) values (987654321, 1)`))).toBe('23503');
  await db.pool.query(`delete from hire where id = 12`);
  expect(await one(`select count(*)::int as n from hire_payment where rental_id = 12`)).toEqual({ n: 0 });
  // The key table is the application's now: no switchover holds it.
  expect(await one(`select count(*)::int as n from partition_switchover.created where kind = 'keys' and table_name = 'hire' and released_at is null`)).toEqual({
    n: 0,
  });
});

test('rows the key table lacks fail the validation after cutover: the switchover says which and rolls back to the original foreign keys', async () => {
  await schema('loan');
  const original = await fks('loan');
  const handle = await switchover('loan');
  await waitForPhase(handle, 'awaiting_approval');
  // Behind the triggers: a key that payments name, gone from the key table.
  await db.pool.query(`delete from loan_keys where id = 3`);
  await handle.signal(approveSignal, { by: 'alice' });
  const f = await failureOf(handle);
  expect(f.message).toMatch(
    /after the cutover of public\.loan, foreign key loan_payment_rental_id_fkey on public\.loan_payment could not be validated against public\.loan_keys: .*DETAIL: Key \(rental_id\)=\(3\) is not present in table "loan_keys"/,
  );
  expect(f.message).toMatch(
    /The switchover rolls back, which re-creates the original foreign keys on the plain table.*rollback .* completed: loan back to plain \(was cutover\)/,
  );
  expect(await one(`select relkind::text as k, to_regclass('loan_keys') as keys from pg_class where oid = 'loan'::regclass`)).toEqual({ k: 'r', keys: null });
  expect(await fks('loan')).toEqual(original);
});

test('a foreign key made into the table after preflight: the cutover refuses under its lock, naming it, and the switchover rolls back', async () => {
  await schema('rent');
  const handle = await switchover('rent');
  await waitForPhase(handle, 'awaiting_approval');
  await db.pool.query(`create table rent_note (id bigint primary key, rental_id bigint references rent (id))`);
  await handle.signal(approveSignal, { by: 'alice' });
  const f = await failureOf(handle);
  expect(f.message).toMatch(
    /cutover of public\.rent refused: since verification, foreign key rent_note_rental_id_fkey on public\.rent_note was made referencing public\.rent \(FOREIGN KEY \(rental_id\) REFERENCES public\.rent\(id\)\)/,
  );
  expect(await one(`select relkind::text as k, to_regclass('rent_keys') as keys from pg_class where oid = 'rent'::regclass`)).toEqual({ k: 'r', keys: null });
  expect((await fks('rent')).map((x: { target: string }) => x.target)).toEqual(['rent', 'rent']);
});

test('partition maintenance moves a row out of <table>_pmax into a new period: its key stays, its payments too', async () => {
  await schema('ride');
  const handle = await switchover('ride', { approval: { required: false }, premake: 1 });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  // Three months ahead: past the premade partitions, into ride_pmax; paid for.
  const ahead = await one(
    `insert into ride (rented_at, amount_cents) values (date_trunc('month', now()) + interval '3 months 3 days', 1) returning id, tableoid::regclass::text as p`,
  );
  expect(ahead.p).toBe('ride_pmax');
  await db.pool.query(`insert into ride_payment (rental_id, amount_cents) values ($1, 1)`, [ahead.id]);
  await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('maint'),
    args: [{ database: 'default', tables: ['ride'], premake: 4 }],
  });
  expect(await one(`select tableoid::regclass::text as p from ride where id = $1`, [ahead.id])).not.toEqual({ p: 'ride_pmax' });
  expect(await one(`select count(*)::int as n from ride_keys where id = $1`, [ahead.id])).toEqual({ n: 1 });
  expect(await one(`select count(*)::int as n from ride_payment where rental_id = $1`, [ahead.id])).toEqual({ n: 1 });
  expect(await one(`select (select count(*) from ride_keys)::int as keys, (select count(*) from ride)::int as rows`)).toEqual({ keys: 301, rows: 301 });
});

test('the referenced table first, then the referencing one: the second carries its foreign key to the key table onto its partitioned table', async () => {
  await db.pool.query(`
    create table trip (id bigserial primary key, at timestamptz not null);
    insert into trip (at) select now() - g * interval '1 day' from generate_series(1, 100) g;
    create table trip_charge (id bigserial primary key, trip_id bigint not null references trip (id) on delete cascade, charged_at timestamptz not null);
    insert into trip_charge (trip_id, charged_at) select g, now() - g * interval '1 day' from generate_series(1, 100) g;`);
  for (const [table, partitionKey] of [
    ['trip', 'at'],
    ['trip_charge', 'charged_at'],
  ]) {
    const r = await w.client.workflow.execute('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId(table),
      args: [{ tables: [{ table, partitionKey, interval: 'month' }], backup: 'none', approval: { required: false } }],
    });
    expect((r as SwitchoverReport).outcome).toBe('done');
  }
  expect(
    await one(`select confrelid::regclass::text as target, convalidated as v from pg_constraint where conrelid = 'trip_charge'::regclass and contype = 'f'`),
  ).toEqual({
    target: 'trip_keys',
    v: true,
  });
  expect(await sqlstate(db.pool.query(`insert into trip_charge (trip_id, charged_at) values (987654321, now())`))).toBe('23503');
  await db.pool.query(`delete from trip where id = 4`);
  expect(await one(`select count(*)::int as n from trip_charge where trip_id = 4`)).toEqual({ n: 0 });
});
