// The switchover end to end on the real dev server and a real database: approval, rejection, dry run.
import { seed, DEMO_TABLES } from '../demo/seed';
import { approveSignal, rejectSignal, statusQuery } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, tableRows, uniqueId, waitForPhase, waitForStatistics, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: 3000, years: 2 });
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

async function snapshot() {
  return {
    revenues: await tableRows(db.pool, 'revenues'),
    expenses: await tableRows(db.pool, 'expenses'),
    daily_cash_balances: await tableRows(db.pool, 'daily_cash_balances'),
  };
}

async function schemaDump() {
  const r = await db.pool.query(`
    select c.relname, c.relkind::text, coalesce((select string_agg(tgname, ',' order by tgname) from pg_trigger t where t.tgrelid = c.oid and not tgisinternal), '') as triggers
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') order by 1`);
  return r.rows;
}

test('dry run returns the plan and changes nothing', async () => {
  const before = { schema: await schemaDump(), rows: await snapshot() };
  const report: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('dry'),
    args: [{ tables: DEMO_TABLES, dryRun: true }],
  });
  expect(report.outcome).toBe('dry_run');
  const rev = report.plan!.tables.find((t) => t.table === 'revenues')!;
  expect(rev.partitionedKey).toEqual(['id', 'occurred_at']);
  expect(rev.partitions.length).toBeGreaterThanOrEqual(24);
  expect(report.plan!.sql.revenues.cutover.join('\n')).toContain('RENAME TO "revenues_legacy"');
  expect(await schemaDump()).toEqual(before.schema);
  expect(await snapshot()).toEqual(before.rows);
});

test('rejected switchover ends before cutover and leaves the table plain', async () => {
  const before = await tableRows(db.pool, 'expenses');
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('reject'),
    args: [{ tables: [{ table: 'expenses', partitionKey: 'occurred_at', interval: 'year' }], approval: { approvers: ['dana'] } }],
  });
  await waitForPhase(handle, 'awaiting_approval');
  await handle.signal(approveSignal, { by: 'mallory' }); // not an approver: ignored
  await handle.signal(rejectSignal, { by: 'dana', reason: 'wrong interval' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('rejected');
  expect(report.approval).toMatchObject({ state: 'rejected', by: 'dana', reason: 'wrong interval' });
  expect(report.tables[0].cutover).toBeUndefined();
  const status = await handle.query(statusQuery);
  expect(status.ignoredSignals.join()).toContain('mallory');
  const kind = await db.pool.query(`select relname, relkind::text from pg_class where relname like 'expenses%' and relkind in ('r', 'p') order by 1`);
  expect(kind.rows).toEqual([{ relname: 'expenses', relkind: 'r' }]);
  expect(await tableRows(db.pool, 'expenses')).toEqual(before);
});

test('approved switchover: tables partitioned under their own names, row for row equal, future inserts accepted', async () => {
  const before = await snapshot();
  const id = uniqueId('approve');
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ tables: DEMO_TABLES, batchSize: 500 }],
  });
  const status = await waitForPhase(handle, 'awaiting_approval');
  expect(status.verification?.ok).toBe(true);
  expect(status.verification?.tables.map((t) => t.legacy.rows)).toEqual([before.revenues.length, before.expenses.length, before.daily_cash_balances.length]);
  expect(status.stages.map((s) => s.stage)).toEqual(expect.arrayContaining(['PRE-FLIGHT', 'POST-BACKUP', 'PRE-MIGRATION', 'POST-MIGRATION']));
  expect(status.progress.revenues.rowsCopied).toBe(before.revenues.length);
  // The statistics, gathered while approval waits, are in for each table.
  expect((await waitForStatistics(handle)).statistics).toEqual(Object.fromEntries(DEMO_TABLES.map((t) => [t.table, 'done'])));
  // Autovacuum, off the partitions while the copy filled them, is back on every one once they are.
  const autovacuumOff = await db.pool.query(
    `select count(*)::int as n, count(*) filter (where k.reloptions @> array['autovacuum_enabled=false'])::int as off
       from pg_inherits i join pg_class k on k.oid = i.inhrelid where i.inhparent = 'revenues_partitioned'::regclass`,
  );
  expect(autovacuumOff.rows[0]).toEqual({ n: expect.any(Number), off: 0 });
  expect(autovacuumOff.rows[0].n).toBeGreaterThan(20);

  await handle.signal(approveSignal, { by: 'alice', comment: 'parity ok' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  for (const t of report.tables) {
    expect(t.cutover?.lockMs).toBeGreaterThan(0);
    expect(t.partitionsCreated).toBeGreaterThan(20);
  }
  const kinds = await db.pool.query(
    `select relname, relkind::text from pg_class where relname in ('revenues', 'expenses', 'daily_cash_balances', 'revenues_legacy') order by 1`,
  );
  expect(kinds.rows).toEqual([
    { relname: 'daily_cash_balances', relkind: 'p' },
    { relname: 'expenses', relkind: 'p' },
    { relname: 'revenues', relkind: 'p' },
    { relname: 'revenues_legacy', relkind: 'r' },
  ]);
  expect(await snapshot()).toEqual(before);

  // Inserts dated months ahead land in premade partitions; the sequence keeps working; writes are mirrored.
  const ins = await db.pool.query(
    `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category)
     values (1, 1, now() + interval '4 months', 100, 'rooms') returning id, tableoid::regclass::text as part`,
  );
  expect(ins.rows[0].part).toMatch(/^revenues_p\d{6}$/);
  const mirrored = await db.pool.query(`select count(*)::int as n from revenues_legacy where id = $1`, [ins.rows[0].id]);
  expect(mirrored.rows[0].n).toBe(1);
  const audit = await db.pool.query(`select distinct stage from partition_switchover.audit where workflow_id = $1 order by 1`, [id]);
  expect(audit.rows.map((r) => r.stage)).toEqual(
    expect.arrayContaining(['APPROVAL', 'CUTOVER', 'POST-BACKUP', 'POST-MIGRATION', 'PRE-FLIGHT', 'PRE-MIGRATION', 'PREPARED']),
  );

  // Cleanup mode (the seed's --cleanup-only): mirror, legacy and backups go; the sequence survives.
  // The same as workflow type `cleanup`, which needs only the tables' names.
  const cleaned: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('cleanup'),
    args: [{ tables: DEMO_TABLES.slice(0, 2), mode: 'cleanup' }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  const byType: SwitchoverReport = await w.client.workflow.execute('cleanup', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('cleanup'),
    args: [{ tables: DEMO_TABLES.slice(2).map((t) => t.table) }],
  });
  expect(byType).toMatchObject({ outcome: 'cleaned', tables: [{ table: DEMO_TABLES[2].table }] });
  const left = await db.pool.query(`select relname from pg_class where relname ~ '_(legacy|backup)$' and relkind = 'r'`);
  expect(left.rows).toEqual([]);
  await db.pool.query(`insert into revenues (organization_id, property_id, occurred_at, amount_cents, category) values (1, 1, now(), 5, 'spa')`);
});
