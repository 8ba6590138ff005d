// What a switchover guards while it holds a table, on a schema of our own (not the demo's), the
// real dev server and database: TRUNCATE refused on both tables until rollback or cleanup
// (issue 12 item 7); the mirror never overwrites a legacy row that has the same id in another
// period (item 8); our SECURITY DEFINER trigger functions cannot be attached by another role,
// while the application's writes through them still work (item 10).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { approveSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitForPhase, type TestDb, type TestWorker, dropRoles } from './helpers';

let db: TestDb;
let w: TestWorker;
const suffix = randomBytes(3).toString('hex');
const ATTACKER = `ps_attacker_${suffix}`;
const WRITER = `ps_writer_${suffix}`;
const LEDGER = [{ table: 'ledger', partitionKey: 'booked_at', interval: 'month' }];

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table accounts (id int primary key, name text not null);
    insert into accounts select g, 'account ' || g from generate_series(1, 20) g;
    create table ledger (
      id bigserial primary key,
      account_id int not null references accounts (id),
      booked_at timestamptz not null,
      amount numeric(12, 2) not null,
      note text
    );
    insert into ledger (account_id, booked_at, amount, note)
      select 1 + g % 20, now() - (g % 400) * interval '1 day', g * 1.25, 'row ' || g from generate_series(1, 2000) g;
    create role ${ATTACKER};
    create schema ${ATTACKER} authorization ${ATTACKER};
    create role ${WRITER};
    grant select, insert, update, delete on ledger to ${WRITER};
    grant select on accounts to ${WRITER};
    grant usage on sequence ledger_id_seq to ${WRITER};
  `);
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
  await dropRoles(ATTACKER, WRITER);
});

/** Runs `text` in its own session as `role` (rolled back when `rollback`), returning the error or the result. */
async function as(role: string | null, text: string, values: unknown[] = []): Promise<{ rows: Record<string, unknown>[]; error?: pg.DatabaseError }> {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    if (role) await c.query(`SET LOCAL ROLE ${role}`);
    const r = await c.query(text, values);
    await c.query('COMMIT');
    return { rows: r.rows };
  } catch (err) {
    await c.query('ROLLBACK');
    return { rows: [], error: err as pg.DatabaseError };
  } finally {
    c.release();
  }
}

/** Our triggers, a partition's as `<parent>/partitions:<trigger>` (once, however many partitions have it). */
async function ourTriggers(): Promise<string[]> {
  const r = await db.pool.query(
    `select distinct case when c.relispartition then pg_partition_root(c.oid)::text || '/partitions' else c.oid::regclass::text end || ':' || t.tgname as t
     from pg_trigger t join pg_class c on c.oid = t.tgrelid where not t.tgisinternal and t.tgparentid = 0 and t.tgname like 'ps\\_%' order by 1`,
  );
  return r.rows.map((x) => x.t);
}

/** A role with no privilege on our tables tries to attach our trigger function to a table of its own. */
async function attach(fn: string) {
  await as(ATTACKER, `create table if not exists ${ATTACKER}.forged (id bigint, account_id int, booked_at timestamptz, amount numeric(12, 2), note text)`);
  return as(ATTACKER, `create trigger forged after insert on ${ATTACKER}.forged for each row execute function ${fn}()`);
}

test('before and after cutover: TRUNCATE refused on both tables, our functions closed to other roles, duplicate ids refused by the mirror; rollback removes the guards', async () => {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('guards'),
    args: [{ tables: LEDGER, backup: 'none', batchSize: 300 }],
  });
  const status = await waitForPhase(handle, 'awaiting_approval');
  // Item 8: the plan says the key widens and what that means for ON CONFLICT (id), where the operator reads before approving.
  const note = 'the primary key of public.ledger widens from (id) to (id, booked_at): an application statement with ON CONFLICT (id) fails after cutover';
  expect(status.plan!.tables[0].warnings.join('\n')).toContain(note);
  expect((await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata')).currentDetails).toMatch(
    /### Plan notes \(read before approving\)\n\n(- ledger: .*\n)*- ledger: the primary key of public\.ledger widens from \(id\) to \(id, booked_at\)/,
  );
  expect(await ourTriggers()).toEqual([
    'ledger:ps_dual_write',
    'ledger:ps_no_truncate',
    'ledger_partitioned/partitions:ps_direct_write',
    'ledger_partitioned:ps_direct_write',
    'ledger_partitioned:ps_no_truncate',
  ]);

  // Item 7, before cutover: TRUNCATE of either table is refused, and says what to do.
  for (const t of ['ledger', 'ledger_partitioned']) {
    const r = await as(null, `truncate ${t}`);
    expect(r.error?.code).toBe('55006');
    expect(r.error?.message).toBe(
      `TRUNCATE of public.${t} is refused while partition-switchover keeps ledger and ledger_partitioned equal: a TRUNCATE bypasses the row triggers that do it`,
    );
    expect(r.error?.hint).toMatch(/Delete the rows instead/);
  }
  expect((await db.pool.query(`select (select count(*) from ledger)::int as l, (select count(*) from ledger_partitioned)::int as p`)).rows[0]).toEqual({
    l: 2000,
    p: 2000,
  });

  // Item 10: another role cannot attach our SECURITY DEFINER function to a table of its own...
  const forged = await attach('public.ledger_ps_sync');
  expect(forged.error?.message).toBe('permission denied for function public.ledger_ps_sync');
  expect(await db.pool.query(`select count(*)::int as n from ledger_partitioned where note = 'forged'`).then((r) => r.rows[0].n)).toBe(0);
  // ...while an application role with only table privileges still writes through our trigger.
  const written = await as(WRITER, `insert into ledger (account_id, booked_at, amount, note) values (3, now(), 9.99, 'by writer') returning id`);
  expect(written.error).toBeUndefined();
  const wid = written.rows[0].id as string;
  expect((await db.pool.query(`select note from ledger_partitioned where id = $1`, [wid])).rows).toEqual([{ note: 'by writer' }]);

  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  // The partitions keep their direct-write guards until cleanup (they record nothing since cutover).
  expect(await ourTriggers()).toEqual([
    'ledger/partitions:ps_direct_write',
    'ledger:ps_mirror_to_legacy',
    'ledger:ps_no_truncate',
    'ledger_legacy:ps_no_truncate',
  ]);
  await db.pool.query(`update ledger_p${new Date().toISOString().slice(0, 7).replace('-', '')} set note = note where false`);
  expect((await db.pool.query(`select count(*)::int as n from partition_switchover.direct_writes`)).rows[0].n).toBe(0);

  // Item 7, after cutover: still refused on the live (partitioned) table and on the legacy one.
  for (const t of ['ledger', 'ledger_legacy']) {
    const r = await as(null, `truncate ${t}`);
    expect(r.error?.message).toMatch(new RegExp(`^TRUNCATE of public\\.${t} is refused`));
  }
  expect((await attach('public.ledger_ps_mirror')).error?.message).toBe('permission denied for function public.ledger_ps_mirror');

  // Item 8: the partitioned key is (id, booked_at); an insert of id 1 in another period would be
  // accepted there, and the mirror used to overwrite the legacy row 1 with it (lost on rollback).
  const row1 = (await db.pool.query(`select t::text as row from ledger_legacy t where id = 1`)).rows[0].row as string;
  const dup = await as(WRITER, `insert into ledger (id, account_id, booked_at, amount, note) values (1, 2, now() + interval '2 months', 1, 'duplicate id')`);
  expect(dup.error?.code).toBe('23505');
  expect(dup.error?.message).toBe(
    'duplicate key (id)=(1): "public"."ledger_legacy" keeps the rows for a rollback until cleanup and still enforces that key, where another row has it',
  );
  const moved = await as(null, `update ledger set id = 1 where id = 2`);
  expect(moved.error?.code).toBe('23505');
  expect((await db.pool.query(`select t::text as row from ledger_legacy t where id = 1`)).rows[0].row).toBe(row1);
  expect((await db.pool.query(`select count(*)::int as n from ledger where id = 1`)).rows[0].n).toBe(1);
  // Ordinary writes still mirror: an update, a partition-key move, a delete, an insert by the writer role.
  expect((await as(WRITER, `update ledger set amount = amount + 1 where id = 1`)).error).toBeUndefined();
  expect((await as(WRITER, `update ledger set booked_at = booked_at - interval '40 days' where id = 3`)).error).toBeUndefined();
  expect((await as(WRITER, `delete from ledger where id = 4`)).error).toBeUndefined();
  expect((await as(WRITER, `insert into ledger (account_id, booked_at, amount) values (5, now(), 5)`)).error).toBeUndefined();
  const live = await tableRows(db.pool, 'ledger');
  expect(await tableRows(db.pool, 'ledger_legacy')).toEqual(live);

  // Rollback: the plain table holds every row, and no guard of ours is left.
  const rb = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('guards-rb'),
    args: [{ switchoverWorkflowId: handle.workflowId }],
  });
  expect(rb.tables).toEqual([{ table: 'ledger', from: 'cutover', restoredRows: null }]);
  expect(await tableRows(db.pool, 'ledger')).toEqual(live);
  expect(await ourTriggers()).toEqual([]);
  expect((await db.pool.query(`select count(*)::int as n from pg_proc where proname like 'ledger\\_ps\\_%'`)).rows[0].n).toBe(0);
});

test('cleanup removes the guard with the legacy table: TRUNCATE works again', async () => {
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('guards-clean'),
    args: [{ tables: LEDGER, backup: 'none', batchSize: 500, approval: { required: false } }],
  });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  expect((await as(null, 'truncate ledger')).error?.code).toBe('55006');
  const cleaned: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('guards-cleanup'),
    args: [{ tables: LEDGER, mode: 'cleanup' }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  expect(await ourTriggers()).toEqual([]);
  expect((await db.pool.query(`select count(*)::int as n from pg_proc where proname like 'ledger\\_ps\\_%'`)).rows[0].n).toBe(0);
  // The key is (id, booked_at) now, with no legacy table to keep: the same id in another period is the application's to allow.
  expect((await as(null, `insert into ledger (id, account_id, booked_at, amount) values (1, 2, now() + interval '2 months', 1)`)).error).toBeUndefined();
  expect((await as(null, 'truncate ledger')).error).toBeUndefined();
});
