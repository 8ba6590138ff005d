// Tables that merely carry our suffixes, long names and a workflow id used twice, on the real dev
// server and database: rollback and cleanup drop only what the switchover made (recorded by oid),
// name conflicts are refused at preflight with nothing changed, long names get distinct hashed
// names, and a second run under the same workflow id prepares its own table again.
import pg from 'pg';
import { approveSignal, rejectSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import { dump, failureOf } from './failure-helpers';
import { tableRows, uniqueId, waitForPhase, type TestDb, type TestWorker, databaseAndWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

databaseAndWorker((d, x) => ([db, w] = [d, x]));

/** A plain table `<schema>.<name>` with `rows` rows over the last months. */
async function makeTable(schema: string, name: string, rows = 300) {
  await db.pool.query(`create schema if not exists ${schema}`);
  await db.pool.query(`create table ${schema}."${name}" (id bigint primary key, occurred_at date not null, amount numeric(12,2) not null)`);
  await db.pool.query(`insert into ${schema}."${name}" select g, current_date - (g % 200), g * 1.5 from generate_series(1, $1::int) g`, [rows]);
}

function start(schema: string, tables: string[], input: Record<string, unknown> = {}, workflowId = uniqueId('lo')) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId,
    args: [{ schema, tables: tables.map((table) => ({ table, partitionKey: 'occurred_at', interval: 'month' })), batchSize: 100, ...input }],
  });
}

test('"backup": "none": a user\'s own t_backup survives a rejected switchover and a cleanup', async () => {
  await makeTable('lo_a', 't');
  await db.pool.query(`create table lo_a.t_backup (note text)`);
  await db.pool.query(`insert into lo_a.t_backup values ('mine'), ('also mine')`);
  const mine = await tableRows(db.pool, 'lo_a.t_backup', 'note');

  const rejected = await start('lo_a', ['t'], { backup: 'none' });
  await waitForPhase(rejected, 'awaiting_approval');
  await rejected.signal(rejectSignal, { by: 'bob', reason: 'not today' });
  expect((await rejected.result()).outcome).toBe('rejected');
  expect(await tableRows(db.pool, 'lo_a.t_backup', 'note')).toEqual(mine);

  const approved = await start('lo_a', ['t'], { backup: 'none' });
  await waitForPhase(approved, 'awaiting_approval');
  await approved.signal(approveSignal, { by: 'alice' });
  expect((await approved.result()).outcome).toBe('done');
  const cleaned: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('lo-clean'),
    args: [{ schema: 'lo_a', tables: [{ table: 't', partitionKey: 'occurred_at', interval: 'month' }], mode: 'cleanup' }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  expect(await tableRows(db.pool, 'lo_a.t_backup', 'note')).toEqual(mine);
  const kinds = await db.pool.query(
    `select relname, relkind::text from pg_class where relnamespace = 'lo_a'::regnamespace and relkind in ('r','p') and not relispartition order by 1`,
  );
  expect(kinds.rows).toEqual([
    { relname: 't', relkind: 'p' },
    { relname: 't_backup', relkind: 'r' },
  ]);
});

test.each([['t_partitioned'], ['t_legacy'], ['t_p' + new Date().getUTCFullYear() + String(new Date().getUTCMonth() + 1).padStart(2, '0')]])(
  'an existing %s is refused at preflight, nothing changed',
  async (existing) => {
    const schema = `lo_${existing.replace(/^t_/, '').slice(0, 12)}`;
    await makeTable(schema, 't');
    await db.pool.query(`create table ${schema}.${existing} (x int)`);
    await db.pool.query(`insert into ${schema}.${existing} values (1)`);
    const before = await dump(db.url, { withState: true });
    const f = await failureOf(await start(schema, ['t'], { backup: 'none', approval: { required: false } }));
    expect(f.type).toBe('UnsupportedSchema');
    expect(f.message).toContain(`${schema}.${existing} already exists`);
    expect(await dump(db.url, { withState: true })).toEqual(before);
  },
);

test('two tables with 60-character names sharing 55 characters switch over in one run with distinct names', async () => {
  const prefix = 'x'.repeat(55);
  const a = `${prefix}aaaaa`;
  const b = `${prefix}bbbbb`;
  await makeTable('lo_long', a, 200);
  await makeTable('lo_long', b, 200);
  const handle = await start('lo_long', [a, b]);
  const s = await waitForPhase(handle, 'awaiting_approval', 90000);
  const [pa, pb] = s.plan!.tables;
  for (const k of ['partitioned', 'legacy', 'backup', 'syncFunction', 'mirrorFunction'] as const) {
    expect(pa.names[k]).not.toEqual(pb.names[k]);
    expect(Buffer.byteLength(pa.names[k])).toBeLessThanOrEqual(63);
  }
  await handle.signal(approveSignal, { by: 'alice' });
  expect((await handle.result()).outcome).toBe('done');
  const r = await db.pool.query(
    `select c.relname, c.relkind::text from pg_class c where c.relnamespace = 'lo_long'::regnamespace and c.relname = any($1) order by 1`,
    [[a, b, pa.names.legacy, pb.names.legacy]],
  );
  expect(r.rows.map((x) => x.relkind)).toHaveLength(4);
  expect(
    r.rows
      .filter((x) => x.relkind === 'p')
      .map((x) => x.relname)
      .sort(),
  ).toEqual([a, b]);
  expect((await db.pool.query(`select count(*)::int as n from lo_long."${a}"`)).rows[0].n).toBe(200);
  expect((await db.pool.query(`select count(*)::int as n from lo_long."${b}"`)).rows[0].n).toBe(200);
});

test('a workflow id used twice: rejected, started again under the same id, approved, and no live insert fails', async () => {
  await makeTable('lo_twice', 't');
  const id = uniqueId('twice');
  const first = await start('lo_twice', ['t'], {}, id);
  await waitForPhase(first, 'awaiting_approval');
  await first.signal(rejectSignal, { by: 'bob', reason: 'again' });
  expect((await first.result()).outcome).toBe('rejected');

  // A writer inserts into the live table throughout the second run.
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const writing = (async () => {
    for (let i = 1; !stop; i++) {
      try {
        await writer.query(`insert into lo_twice.t values ($1, current_date, 1)`, [100000 + i]);
        ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const second = await start('lo_twice', ['t'], {}, id);
    await waitForPhase(second, 'awaiting_approval', 90000);
    await second.signal(approveSignal, { by: 'alice' });
    expect((await second.result()).outcome).toBe('done');
  } finally {
    stop = true;
    await writing;
    await writer.end();
  }
  expect(failures.slice(0, 3)).toEqual([]);
  expect(ok).toBeGreaterThan(10);
  const n = (await db.pool.query(`select count(*)::int as n from lo_twice.t`)).rows[0].n;
  expect(n).toBe(300 + ok);
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'lo_twice.t'::regclass`)).rows[0].relkind).toBe('p');
});
