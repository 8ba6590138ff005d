// Retention through the maintainPartitions workflow on real PostgreSQL and Temporal: a dry run
// changes nothing, a missing archive schema is refused, old partitions are detached
// (CONCURRENTLY) into the archive schema or dropped (under the lock budget, next to a default
// partition), each audited with its rows and bounds; the partition the cutoff falls inside, with a
// late row inside keep, is left and the result says why; bad input is refused naming the field;
// an archived partition is attached again by hand with the README's statements; a detach
// interrupted before the move into the archive is finished by the next run.
import type { MaintenanceReport } from '../workflows/maintenance';
import type { SwitchoverReport } from '../workflows/switchover';
import { reattachSql } from '../src/retentionsql';
import { col, revenuesPlan } from './fixtures';
import { createTestDb, startTestWorker, uniqueId, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`
    create table ledger (id bigserial primary key, booked_on date not null, amount numeric not null);
    insert into ledger (booked_on, amount) select current_date - g * 10, g from generate_series(0, 120) g;
    create table visits (id bigserial primary key, at timestamptz not null);
    insert into visits (at) select now() - g * interval '10 days' from generate_series(0, 80) g;
    create table rental (id bigserial primary key, rented_on date not null);
    insert into rental (rented_on) select current_date - g * 20 from generate_series(0, 40) g;
    create table payment (id bigserial primary key, rental_id bigint not null references rental (id));
    insert into payment (rental_id) select id from rental;
  `);
  w = await startTestWorker({ default: db.url });
  for (const [table, partitionKey, defaultPartition] of [
    ['ledger', 'booked_on', false],
    ['visits', 'at', true],
    ['rental', 'rented_on', false],
  ] as const) {
    const r: SwitchoverReport = await w.client.workflow.execute('switchover', {
      taskQueue: w.taskQueue,
      workflowId: uniqueId(`switch-${table}`),
      args: [{ tables: [{ table, partitionKey, interval: 'month' }], premake: 1, defaultPartition, approval: { required: false } }],
    });
    expect(r.outcome).toBe('done');
  }
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

const maintain = (input: Record<string, unknown>): Promise<MaintenanceReport> =>
  w.client.workflow.execute('maintainPartitions', { taskQueue: w.taskQueue, workflowId: uniqueId('retention'), args: [input] });
const partitions = async (table: string) =>
  (
    await db.pool.query(`select c.relname as n from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = $1::regclass order by 1`, [table])
  ).rows.map((r) => r.n as string);
const cutoffOf = async (keep: string) =>
  (await db.pool.query(`select ((now() at time zone 'UTC')::date - $1::interval)::date::text as c`, [keep])).rows[0].c as string;
const retentionAudit = async (table: string) =>
  (await db.pool.query(`select stage, details from partition_switchover.audit where table_name = $1 and stage like 'RETENTION-%' order by stage`, [table]))
    .rows;

test('bad input is refused naming the field, and nothing changes', async () => {
  await expect(maintain({ tables: ['ledger'], retention: { keep: '7 parsecs' } })).rejects.toMatchObject({
    cause: { message: expect.stringMatching(/retention\.keep: must be a count and a unit/) },
  });
  await expect(maintain({ tables: ['ledger'], retention: { keep: '7 years', archiveSchema: 'x; drop table ledger' } })).rejects.toMatchObject({
    cause: { message: expect.stringMatching(/retention\.archiveSchema: must be a plain identifier/) },
  });
  // The archive schema must exist: who may read archived data is the DBA's call.
  const before = await partitions('ledger');
  await expect(maintain({ tables: ['ledger'], premake: 1, retention: { keep: '2 years' } })).rejects.toMatchObject({
    cause: {
      cause: {
        type: 'StateConflict',
        message: expect.stringMatching(/the archive schema "archive" does not exist\. .*CREATE SCHEMA "archive";.*Retention changed nothing\./),
      },
    },
  });
  expect(await partitions('ledger')).toEqual(before);
});

test('a dry run lists what it would detach and changes nothing', async () => {
  await db.pool.query('create schema archive');
  const before = await partitions('ledger');
  const cutoff = await cutoffOf('2 years');
  const report = await maintain({ tables: ['ledger'], retention: { keep: '2 years' }, dryRun: true });
  expect(report.tables).toEqual([]); // no partition made either
  const r = report.retention![0];
  expect(r).toMatchObject({ table: 'ledger', cutoff, dryRun: true });
  expect(r.retired.length).toBeGreaterThan(5);
  expect(r.retired.every((a) => a.action === 'detach' && a.to <= cutoff && a.how === 'concurrently' && a.archivedAs === `archive.${a.partition}`)).toBe(true);
  const old = (await db.pool.query(`select count(*)::int as n from ledger where booked_on >= $1 and booked_on < $2`, [r.retired[0].from, r.retired.at(-1)!.to]))
    .rows[0].n;
  expect(r.retired.reduce((s, a) => s + a.rows, 0)).toBe(old);
  expect(r.kept.find((k) => k.partition === 'ledger_pmin')?.reason).toMatch(/retention never detaches or drops it/);
  expect(await partitions('ledger')).toEqual(before);
  expect(await retentionAudit('ledger')).toEqual([]);
});

test('detach by retention into the archive schema, audited with rows and bounds; a late row inside keep keeps its partition', async () => {
  const cutoff = await cutoffOf('2 years');
  // A late row dated on the cutoff (inside keep) lands in the partition the cutoff falls inside.
  await db.pool.query(`insert into ledger (booked_on, amount) values ($1, 7)`, [cutoff]);
  const oldRows = (await db.pool.query(`select count(*)::int as n from ledger where booked_on < $1`, [cutoff])).rows[0].n;
  const report = await maintain({ tables: ['ledger'], retention: { keep: '2 years', action: 'detach' } });
  const r = report.retention![0];
  expect(r.dryRun).toBe(false);
  const straddling = r.kept.find((k) => k.reason.includes('reaches past the cutoff'))!;
  expect(straddling.reason).toMatch(
    new RegExp(
      `^\\d{4}-\\d{2}-01\\.\\.\\d{4}-\\d{2}-01 reaches past the cutoff ${cutoff} and holds rows dated on or after it \\(inside keep\\); retired once it ends on or before the cutoff$`,
    ),
  );
  const left = await partitions('ledger');
  expect(left).toContain(straddling.partition);
  for (const a of r.retired) {
    expect(left).not.toContain(a.partition);
    const n = (await db.pool.query(`select count(*)::int as n from archive.${a.partition}`)).rows[0].n;
    expect(n).toBe(a.rows);
  }
  // Rows older than the cutoff are gone from the table except those of pmin and of the partition the cutoff is in.
  const stillOld = (await db.pool.query(`select count(*)::int as n from ledger where booked_on < $1`, [r.retired[0].from])).rows[0].n;
  expect(r.retired.reduce((s, a) => s + a.rows, 0) + stillOld).toBeLessThanOrEqual(oldRows);
  const audits = await retentionAudit('ledger');
  expect(audits).toHaveLength(r.retired.length);
  expect(audits[0].stage).toBe(`RETENTION-DETACH ${r.retired[0].partition}`);
  expect(audits[0].details).toMatchObject({
    partition: r.retired[0].partition,
    from: r.retired[0].from,
    to: r.retired[0].to,
    rows: r.retired[0].rows,
    status: 'done',
    archivedAs: `archive.${r.retired[0].partition}`,
  });
  // Again: nothing left to retire.
  expect((await maintain({ tables: ['ledger'], retention: { keep: '2 years' } })).retention![0].retired).toEqual([]);

  // Re-attached by hand, as the README shows.
  const first = r.retired[0];
  const tp = { ...revenuesPlan(col('amount', 'numeric')), table: 'ledger', partitionKey: 'booked_on', keyType: 'date' as const };
  for (const s of reattachSql(tp, 'archive', first)) await db.pool.query(s);
  expect(await partitions('ledger')).toContain(first.partition);
  const back = (await db.pool.query(`select count(*)::int as n from ledger where booked_on >= $1 and booked_on < $2`, [first.from, first.to])).rows[0].n;
  expect(back).toBe(first.rows);

  // A crash after DETACH ... CONCURRENTLY, before the move into the archive: the audit row says the
  // detach began, the partition is a plain table in public. The next run finishes it.
  const details = { ...first, action: 'detach', status: 'detaching', archiveSchema: 'archive', archivedAs: `archive.${first.partition}` };
  await db.pool.query(
    `insert into partition_switchover.audit (workflow_id, run_id, schema_name, table_name, stage, details) values ('crashed', 'r1', 'public', 'ledger', $1, $2)`,
    [`RETENTION-DETACH ${first.partition}`, JSON.stringify(details)],
  );
  await db.pool.query(`alter table ledger detach partition ${first.partition} concurrently`);
  const next = (await maintain({ tables: ['ledger'], retention: { keep: '2 years' } })).retention![0];
  expect(next.finished).toEqual([first.partition]);
  expect(next.retired).toEqual([]);
  expect((await db.pool.query(`select count(*)::int as n from archive.${first.partition}`)).rows[0].n).toBe(first.rows);
  expect((await db.pool.query(`select to_regclass($1) as r`, [`public.${first.partition}`])).rows[0].r).toBeNull();
  // Finished once: a further run finds nothing to finish.
  expect((await maintain({ tables: ['ledger'], retention: { keep: '2 years' } })).retention![0].finished).toEqual([]);
});

test('drop by retention next to a default partition (plain DETACH under the lock budget)', async () => {
  const cutoff = await cutoffOf('1 year');
  const before = await partitions('visits');
  const report = await maintain({ tables: ['visits'], retention: { keep: '1 year', action: 'drop' } });
  const r = report.retention![0];
  expect(r.retired.length).toBeGreaterThan(5);
  expect(r.retired.every((a) => a.action === 'drop' && a.how === 'locked' && a.archivedAs === undefined && a.to <= cutoff)).toBe(true);
  const after = await partitions('visits');
  expect(after).toContain('visits_default');
  expect(after).toHaveLength(before.length - r.retired.length + report.tables[0].created.length);
  for (const a of r.retired) {
    expect((await db.pool.query(`select to_regclass($1) as r`, [`public.${a.partition}`])).rows[0].r).toBeNull();
  }
  const audits = await retentionAudit('visits');
  expect(audits.map((x) => x.stage)).toEqual(r.retired.map((a) => `RETENTION-DROP ${a.partition}`).sort());
  expect(audits.map((x) => x.details.rows).reduce((s: number, n: number) => s + n, 0)).toBe(r.retired.reduce((s, a) => s + a.rows, 0));
  expect(
    (await db.pool.query(`select count(*)::int as n from visits where at >= $1::date and at < $2::date`, [r.retired[0].from, r.retired.at(-1)!.to])).rows[0].n,
  ).toBe(0);
});

test('foreign keys into the table (key table): a partition with rows is left, one emptied through the table is retired', async () => {
  const first = async () => (await maintain({ tables: ['rental'], retention: { keep: '1 year' }, dryRun: true })).retention![0].kept;
  const report = (await maintain({ tables: ['rental'], retention: { keep: '1 year' } })).retention![0];
  expect(report.retired).toEqual([]);
  const held = report.kept.filter((k) => k.reason.startsWith('holds rows whose keys public.rental_keys carries'));
  expect(held.length).toBeGreaterThan(3);
  expect(held[0].reason).toMatch(/Delete its rows through the table first \(DELETE FROM "public"."rental" WHERE "rented_on" < '\d{4}-\d{2}-01'/);
  expect((await first()).length).toBe(report.kept.length);
  // The oldest period emptied through the table (its payments first: NO ACTION): its keys go with its rows.
  const p = held[0].partition;
  await db.pool.query(`delete from payment where rental_id in (select id from ${p}); delete from rental where id in (select id from ${p})`);
  const keys = (await db.pool.query(`select count(*)::int as n from rental_keys`)).rows[0].n;
  const again = (await maintain({ tables: ['rental'], retention: { keep: '1 year' } })).retention![0];
  expect(again.retired.map((a) => [a.partition, a.rows, a.how])).toEqual([[p, 0, 'locked']]);
  expect((await db.pool.query(`select count(*)::int as n from archive.${p}`)).rows[0].n).toBe(0);
  expect((await db.pool.query(`select count(*)::int as n from rental_keys`)).rows[0].n).toBe(keys);
  expect((await db.pool.query(`select count(*)::int as n from rental`)).rows[0].n).toBe(keys);
});
