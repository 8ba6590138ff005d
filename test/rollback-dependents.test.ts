// What the application makes on a table after cutover, and the rollback (issue 24, item 1): views
// follow the table back (they read the plain table afterwards, no retries, nothing left under our
// names); a materialized view, a function with a SQL body and another table's foreign key cannot,
// so the rollback refuses at once, changing nothing, naming each and the statements to run; once
// run, the rollback completes. Own schema, real dev server.
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../src/reports';
import { uniqueId, type TestDb, type TestWorker, databaseAndWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

databaseAndWorker((d, x) => ([db, w] = [d, x]));

const one = async (text: string) => (await db.pool.query(text)).rows[0];

async function switchedOver(table: string): Promise<string> {
  await db.pool.query(`
    create table ${table} (id bigserial primary key, paid_at timestamptz not null, amount_cents bigint not null);
    insert into ${table} (paid_at, amount_cents) select now() - (g % 200) * interval '1 day', g from generate_series(1, 500) g;`);
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(table),
    args: [{ tables: [{ table, partitionKey: 'paid_at', interval: 'month' }], approval: { required: false }, backup: 'none' }],
  });
  expect(((await handle.result()) as SwitchoverReport).outcome).toBe('done');
  return handle.workflowId;
}

const rollback = (switchoverWorkflowId: string) =>
  w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId('rb'), args: [{ switchoverWorkflowId }] }) as Promise<RollbackReport>;

test('views made after cutover follow the table back: the rollback completes at once and they read the plain table', async () => {
  const id = await switchedOver('pay');
  await db.pool.query(`create view pay_recent as select id, amount_cents from pay where paid_at > now() - interval '30 days'`);
  await db.pool.query(`create view pay_total as select sum(amount_cents) as total, count(*) as n from pay`);
  await db.pool.query(`insert into pay (paid_at, amount_cents) values (now(), 7)`);
  const before = await one(`select (select total from pay_total)::text as total, (select count(*)::int from pay_recent) as recent`);
  const rb = await rollback(id);
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect(await one(`select relkind::text as k, to_regclass('pay_partitioned') as p from pg_class where oid = 'pay'::regclass`)).toEqual({ k: 'r', p: null });
  // Both views read the plain table now, with the same answers.
  expect(await one(`select (select total from pay_total)::text as total, (select count(*)::int from pay_recent) as recent`)).toEqual(before);
  const reads = await db.pool.query(
    `select distinct v.relname::text as view, d.refobjid::regclass::text as reads from pg_depend d join pg_rewrite r on r.oid = d.objid join pg_class v on v.oid = r.ev_class
     where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass and v.relname in ('pay_recent', 'pay_total') and d.refobjid <> v.oid order by 1`,
  );
  expect(reads.rows).toEqual([
    { view: 'pay_recent', reads: 'pay' },
    { view: 'pay_total', reads: 'pay' },
  ]);
});

test('a materialized view, a SQL-body function and a foreign key made after cutover: the rollback refuses at once naming each and the statements; after them it completes', async () => {
  const id = await switchedOver('fee');
  await db.pool.query(`create materialized view fee_sum as select sum(amount_cents) as total from fee`);
  await db.pool.query(`create function fee_count() returns bigint language sql begin atomic select count(*) from fee; end`);
  // A referencing table: the partitioned table's primary key is (id, paid_at).
  await db.pool.query(`create table fee_note (id bigint, paid_at timestamptz, note text, foreign key (id, paid_at) references fee (id, paid_at))`);
  const started = Date.now();
  const first = rollback(id);
  const f = await first.then(
    () => null,
    (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
  );
  expect(Date.now() - started).toBeLessThan(30000);
  expect(f).toMatch(
    /rollback of public\.fee refused: since cutover, foreign key fee_note_id_paid_at_fkey on fee_note, function fee_count\(\), materialized view public\.fee_sum depend on the partitioned table/,
  );
  expect(f).toMatch(
    /Nothing was changed\. Run ALTER TABLE fee_note DROP CONSTRAINT fee_note_id_paid_at_fkey; DROP FUNCTION fee_count\(\); DROP MATERIALIZED VIEW public\.fee_sum; then the rollback again, then ALTER TABLE fee_note ADD CONSTRAINT fee_note_id_paid_at_fkey FOREIGN KEY \(id, paid_at\) REFERENCES fee\(id, paid_at\); CREATE MATERIALIZED VIEW public\.fee_sum AS SELECT sum\(fee\.amount_cents\) AS total/,
  );
  expect(f).toMatch(/make the function fee_count\(\) again as you made it/);
  // Nothing changed: still partitioned, the dependents in place.
  expect(await one(`select relkind::text as k from pg_class where oid = 'fee'::regclass`)).toEqual({ k: 'p' });
  expect(await one(`select (select total from fee_sum)::text as total, fee_count()::int as n`)).toEqual({ total: expect.any(String), n: 500 });

  await db.pool.query(`alter table fee_note drop constraint fee_note_id_paid_at_fkey; drop function fee_count(); drop materialized view public.fee_sum`);
  const rb = await rollback(id);
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover']);
  expect(await one(`select relkind::text as k, to_regclass('fee_partitioned') as p from pg_class where oid = 'fee'::regclass`)).toEqual({ k: 'r', p: null });
  // The statement the refusal named makes the materialized view again, on the plain table.
  const create = /then ALTER TABLE [^;]+; (CREATE MATERIALIZED VIEW [^;]+);/.exec(f!)![1];
  await db.pool.query(create);
  expect(await one(`select total::int as total from fee_sum`)).toEqual({ total: 125250 });
});
