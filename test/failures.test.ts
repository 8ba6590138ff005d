// Failures at every stage, on the real dev server and database. An activity runs for real and then
// fails (test/failure-helpers.ts injectAfter), or the database itself refuses (a lock held by a test
// transaction, a role without privileges, a table renamed under the switchover, rows changed
// behind its back). Each ends in a state we can name: plain again after a rollback whose outcome
// the failure states, or unchanged when nothing had been done yet.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { seed, DEMO_TABLES } from '../demo/seed';
import { ApplicationFailure } from '@temporalio/common';
import { statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { dump, failureOf, historyFacts, injectAfter, type Injection } from './failure-helpers';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitFor, type TestDb, type TestWorker, dropRoles } from './helpers';

const STAGES = [
  'preflight',
  'recordChecksum',
  'backupTable',
  'prepareTable',
  'installTriggers',
  'copyRange',
  'copyRecheck',
  'buildIndexes',
  'verifyTable',
  'analyzeTable',
  'cutoverTable',
] as const;
const EXTRA = ['parity', 'foreign', 'lock', 'rename', 'perm', 'stuck', 'rbcrash'] as const;
const TABLES = DEMO_TABLES.map((t) => t.table);
const role = `ps_nopriv_${randomBytes(4).toString('hex')}`;

const dbs: Record<string, TestDb> = {};
const plan = new Map<string, Injection>();
let w: TestWorker;

beforeAll(async () => {
  const names = [...STAGES, ...EXTRA].map((s) => s.toLowerCase());
  await Promise.all(
    names.map(async (n) => {
      dbs[n] = await createTestDb();
      await seed(dbs[n].pool, { rows: 300, years: 1 });
    }),
  );
  await dbs.perm.pool.query(`create role ${role} login`);
  const limited = new URL(dbs.perm.url);
  limited.username = role;
  const targets: Record<string, string> = { limited: limited.toString() };
  for (const n of names) targets[n] = dbs[n].url;
  w = await startTestWorker(targets, undefined, { wrapActivities: injectAfter(plan) });
});
afterAll(async () => {
  await w?.stop();
  await Promise.all(Object.values(dbs).map((d) => d.drop()));
  await dropRoles(role);
});

async function snapshot(db: TestDb) {
  const rows = Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await tableRows(db.pool, t)] as const)));
  return { schema: await dump(db.url, { schemaOnly: true }), rows };
}

function start(database: string, id: string, input: Record<string, unknown> = {}) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ tables: DEMO_TABLES, database, batchSize: 100, approval: { required: false }, ...input }],
  });
}

/** The failure says a rollback ran and completed, per table, and the database is plain again. */
async function expectRolledBack(db: TestDb, handle: Awaited<ReturnType<typeof start>>, before: Awaited<ReturnType<typeof snapshot>>) {
  const f = await failureOf(handle);
  expect(f.message).toMatch(
    new RegExp(`\\. rollback ${handle.workflowId}-rollback completed: (\\w+ back to plain \\(was (plain|prepared|cutover)\\)(, |\\.$)){3}`),
  );
  const status = await handle.query(statusQuery);
  expect(status.phase).toBe('failed');
  expect(status.rollback).toMatchObject({ workflowId: `${handle.workflowId}-rollback`, state: 'completed' });
  expect((await w.client.workflow.getHandle(`${handle.workflowId}-rollback`).describe()).status.name).toBe('COMPLETED');
  expect(await snapshot(db)).toEqual(before);
  expect((await db.pool.query(`select count(*)::int as n from partition_switchover.claims`)).rows[0].n).toBe(0);
  return f;
}

test.each(STAGES)('a failure right after %s ran: rolled back, plain again, and the failure says so', async (activity) => {
  const db = dbs[activity.toLowerCase()];
  const before = await snapshot(db);
  const withState = await dump(db.url, { withState: true });
  const id = uniqueId(`fail-${activity}`);
  plan.set(id, { activity });
  const handle = await start(activity.toLowerCase(), id);
  if (activity === 'preflight') {
    // Nothing was done yet: no rollback is needed and none runs; not even our schema was created.
    const f = await failureOf(handle);
    expect(f).toMatchObject({ type: 'Injected', message: 'injected failure after preflight ran' });
    await expect(w.client.workflow.getHandle(`${id}-rollback`).describe()).rejects.toThrow();
    expect(await dump(db.url, { withState: true })).toEqual(withState);
    return;
  }
  const f = await expectRolledBack(db, handle, before);
  expect(f.type).toBe('Injected');
  expect(f.message).toMatch(new RegExp(`^injected failure after ${activity} ran\\. rollback`));
  if (activity === 'cutoverTable') expect(f.message).toMatch(/revenues back to plain \(was cutover\)/);
  if (activity === 'prepareTable') expect(f.message).toMatch(/revenues back to plain \(was prepared\)/);
});

test('a row changed behind the switchover: verification fails as ParityMismatch naming the row, then rolls back', async () => {
  const db = dbs.parity;
  const before = await snapshot(db);
  const id = uniqueId('parity');
  let changed = '';
  plan.set(id, {
    activity: 'verifyTable',
    before: true,
    action: async () => {
      // Bypasses the dual-write trigger: the partitioned copy now differs from the table in one row.
      const r = await db.pool.query(`update revenues_partitioned set amount_cents = amount_cents + 1
        where id = (select min(id) from revenues_partitioned) returning id`);
      changed = String(r.rows[0].id);
    },
  });
  // "full": a change behind the triggers is what only the full re-read claims to catch.
  const f = await expectRolledBack(db, await start('parity', id, { verify: 'full' }), before);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(
    new RegExp(`^verification failed: revenues differs in \\d{4}-\\d{2}-01 \\(ids ${changed}\\)\\. The legacy table is untouched and authoritative`),
  );
});

test('a trigger not ours that a tool adds to the partitioned copy changes copied rows: incremental verification compares every row, fails naming it, and rolls back', async () => {
  const db = dbs.foreign;
  // As an audit or "updated_at" tool does: an event trigger puts a row trigger on every new table;
  // this one changes some rows as they are inserted (the copy's rows are not in the change log).
  await db.pool.query(`
    create function skew() returns trigger language plpgsql as $$
      begin if new.id % 50 = 7 then new.amount_cents := new.amount_cents + 1; end if; return new; end $$;
    create function attach_skew() returns event_trigger language plpgsql as $$
      begin
        if exists (select 1 from pg_event_trigger_ddl_commands() where object_identity = 'public.revenues_partitioned' and command_tag = 'CREATE TABLE') then
          execute 'create trigger skew before insert on public.revenues_partitioned for each row execute function skew()';
        end if;
      end $$;
    create event trigger attach_skew on ddl_command_end when tag in ('CREATE TABLE') execute function attach_skew();`);
  const before = await snapshot(db);
  const f = await expectRolledBack(db, await start('foreign', uniqueId('foreign')), before);
  expect(f.type).toBe('ParityMismatch');
  expect(f.message).toMatch(
    /^verification failed: revenues differs in .*\(every row compared: trigger not made by the switchover on revenues_partitioned or its partitions \(revenues_partitioned\.skew \(enabled\)\) fire as the copy writes rows/,
  );
});

test('a lock held at cutover: lock_not_available is retried with backoff, then the cutover goes through', async () => {
  const db = dbs.lock;
  const id = uniqueId('lock');
  let blocker: pg.PoolClient | undefined;
  plan.set(id, {
    activity: 'verifyTable',
    action: async () => {
      // A long reader on revenues: the cutover's ACCESS EXCLUSIVE lock cannot be granted.
      blocker = await db.pool.connect();
      await blocker.query('begin');
      await blocker.query('select count(*) from revenues');
    },
  });
  const handle = await start('lock', id, { lockTimeoutMs: 200 });
  const pending = await waitFor(async () => {
    const d = await handle.describe();
    const p = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'cutoverTable');
    return p && (p.attempt ?? 0) >= 3 && p;
  }, 'cutover retried twice');
  expect(pending.lastFailure?.message).toMatch(/cutover of public\.revenues could not take its lock within 200 ms .*retrying with backoff/);
  await blocker!.query('commit');
  blocker!.release();
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  const facts = await historyFacts(handle);
  expect(Math.max(...facts.attempts.cutoverTable)).toBeGreaterThanOrEqual(3);
  expect((await db.pool.query(`select relkind::text from pg_class where relname = 'revenues'`)).rows[0].relkind).toBe('p');
});

test('a table renamed under the switchover: the copy fails at once (StateConflict), then rolls back', async () => {
  const db = dbs.rename;
  const before = await snapshot(db);
  const id = uniqueId('rename');
  plan.set(id, { activity: 'installTriggers', action: async () => void (await db.pool.query(`alter table revenues_partitioned rename to revenues_moved`)) });
  const handle = await start('rename', id);
  const f = await failureOf(handle);
  expect(f.type).toBe('StateConflict');
  expect(f.message).toMatch(/^copy of revenues: relation "public\.revenues_partitioned" does not exist \(SQLSTATE 42P01\)/);
  expect(f.message).toMatch(/rollback \S+-rollback completed/);
  expect((await historyFacts(handle)).attempts.copyRange.every((a) => a === 1)).toBe(true);
  await db.pool.query(`drop table revenues_moved`);
  expect(await snapshot(db)).toEqual(before);
});

test('a role without privileges: refused at preflight naming the GRANT, nothing changed', async () => {
  const db = dbs.perm;
  const before = await dump(db.url, { withState: true });
  const handle = await start('limited', uniqueId('perm'));
  const f = await failureOf(handle);
  // It could not give the new tables their owner (postgres): refused before any read of the rows.
  expect(f.type).toBe('UnsupportedSchema');
  expect(f.message).toContain(`public.revenues is owned by role postgres, and the worker's role ${role} is neither superuser nor a member of it`);
  expect(f.message).toContain(`run GRANT "postgres" TO "${role}" and start again`);
  expect((await historyFacts(handle)).attempts.preflight).toEqual([1]);
  expect(await dump(db.url, { withState: true })).toEqual(before);
});

test('a rollback that cannot finish one table still rolls back the others, and both failures say which is which', async () => {
  const db = dbs.stuck;
  const id = uniqueId('stuck');
  plan.set(id, {
    activity: 'installTriggers',
    action: async () => {
      // Someone renames a table mid-switchover, then the switchover fails: there is no expenses to go back to.
      await db.pool.query(`alter table expenses rename to expenses_elsewhere`);
      throw ApplicationFailure.nonRetryable('injected failure after installTriggers ran', 'Injected');
    },
  });
  const f = await failureOf(await start('stuck', id));
  expect(f.type).toBe('Injected');
  expect(f.message).toBe(
    `injected failure after installTriggers ran. rollback ${id}-rollback FAILED: rollback incomplete: ` +
      `public.expenses does not exist; rollback cannot tell what to restore. Nothing was changed; ` +
      `back to plain: daily_cash_balances, revenues. Fix the cause, then run the rollback again: every step is idempotent.`,
  );
  const child = w.client.workflow.getHandle(`${id}-rollback`);
  expect((await child.describe()).status.name).toBe('FAILED');
  expect((await child.query(statusQuery)).phase).toBe('failed');
  // Put the table back and run the rollback again: now everything is plain.
  await db.pool.query(`alter table expenses_elsewhere rename to expenses`);
  const again = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('stuck-again'),
    args: [{ switchoverWorkflowId: id, database: 'stuck' }],
  });
  expect(again.tables.map((t: { table: string; from: string }) => `${t.table}:${t.from}`)).toEqual([
    'daily_cash_balances:plain',
    'expenses:prepared',
    'revenues:plain',
  ]);
  expect((await db.pool.query(`select count(*)::int as n from pg_trigger where tgname = 'ps_dual_write'`)).rows[0].n).toBe(0);
  expect((await db.pool.query(`select count(*)::int as n from partition_switchover.claims`)).rows[0].n).toBe(0);
});

test('a rollback step interrupted right after it committed is retried and ends in the same state', async () => {
  const db = dbs.rbcrash;
  const before = await snapshot(db);
  const id = uniqueId('rbcrash');
  plan.set(id, { activity: 'installTriggers' });
  // The first rollback step commits, then its worker "dies" before reporting: a plain error, retried.
  plan.set(`${id}-rollback`, { activity: 'rollbackTable', action: async () => Promise.reject(new Error('worker lost after commit')) });
  const handle = await start('rbcrash', id);
  const f = await expectRolledBack(db, handle, before);
  expect(f.message).toMatch(/^injected failure after installTriggers ran\. rollback \S+ completed: daily_cash_balances back to plain \(was plain\)/);
  const facts = await historyFacts(w.client.workflow.getHandle(`${id}-rollback`));
  expect(facts.attempts.rollbackTable).toEqual([2, 1, 1]);
});
