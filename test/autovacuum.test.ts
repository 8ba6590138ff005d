// Autovacuum off the copy's partitions until their statistics are gathered (activities/autovacuum.ts):
// prepare makes every partition (and its TOAST table) with autovacuum_enabled = false, the analyze
// before approval turns it back on, in transactions of the lock table's size (more partitions than
// one holds here), a second run finds nothing to do, and partitions made after cutover by
// partition maintenance never get the option. The bench measures what it saves (README "Speed").
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { resumeAutovacuum } from '../activities/autovacuum';
import { partitionBatch } from '../activities/prepare';
import { createPools } from '../src/db';
import { switchoverInput } from '../src/input';
import { partitionSql } from '../src/sqlgen';
import { createTestDb, uniqueId, type TestDb } from './helpers';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
  // 400 days: more daily partitions than one transaction of this server's lock table takes.
  await db.pool.query(`create table visits (id bigint primary key, at timestamptz not null, note text not null);
    insert into visits select g, '2024-01-01'::timestamptz + (g % 400) * interval '1 day', repeat('n', 50) || g from generate_series(1, 4000) g`);
});
afterAll(() => db?.drop());

/** The activities on this test's database, run as one workflow's (`run`); `pools` to end. */
function activities(workflow: string) {
  const pools = createPools({ default: db.url });
  const acts = createActivities({ pools });
  const mock = new MockActivityEnvironment({ workflowExecution: { workflowId: uniqueId(workflow), runId: 'r1' } });
  const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...a: A) => mock.run(fn, ...a) as Promise<R>;
  return { pools, acts, run };
}

/** Partitions of `parent` with autovacuum off, on the partition or on its TOAST table. */
const paused = async (parent: string) =>
  (
    await db.pool.query(
      `select k.relname, coalesce(k.reloptions, '{}') as own, coalesce(t.reloptions, '{}') as toast
         from pg_inherits i join pg_class k on k.oid = i.inhrelid left join pg_class t on t.oid = k.reltoastrelid
        where i.inhparent = $1::regclass order by 1`,
      [parent],
    )
  ).rows as { relname: string; own: string[]; toast: string[] }[];

test('prepare pauses autovacuum on every partition and its TOAST table; the analyze before approval resumes it, batch by batch, once', async () => {
  const { pools, acts, run } = activities('autovacuum');
  try {
    const plan = await run(acts.preflight, switchoverInput.parse({ tables: [{ table: 'visits', partitionKey: 'at', interval: 'day' }] }));
    const tp = plan.tables[0];
    await run(acts.ensureState, 'default');
    await run(acts.claimTables, 'default', plan.tables);
    await run(acts.prepareTable, 'default', tp);
    const before = await paused('visits_partitioned');
    expect(before.length).toBe(tp.partitions.length + (tp.defaultPartition ? 1 : 0));
    const batch = await pools
      .get('default')
      .connect()
      .then(async (c) => {
        try {
          return await partitionBatch(c, tp);
        } finally {
          c.release();
        }
      });
    expect(before.length).toBeGreaterThan(batch);
    for (const p of before) {
      expect(p.own).toEqual(['autovacuum_enabled=false']);
      expect(p.toast).toEqual(['autovacuum_enabled=false']);
    }
    // Rows in, as the copy would (no ANALYZE yet), then the analyze before approval.
    await db.pool.query(`insert into visits_partitioned select * from visits`);
    const a = await run(acts.analyzeTable, 'default', tp, { parallelism: 2 });
    expect(a).toEqual({ skipped: null, autovacuumResumed: before.length });
    for (const p of await paused('visits_partitioned')) {
      expect(p.own).toEqual([]);
      expect(p.toast).toEqual([]);
    }
    // Statistics gathered on a partition, and the parent's own.
    const stats = await db.pool.query(`select count(*)::int as n from pg_stats where tablename = $1 or (tablename = 'visits_partitioned' and inherited)`, [
      before[5].relname,
    ]);
    expect(stats.rows[0].n).toBeGreaterThanOrEqual(6);
    // Again (a retried activity, the cutover's own pass): nothing left to do.
    expect(await resumeAutovacuum(pools.get('default'), tp)).toEqual([]);
    expect((await run(acts.analyzeTable, 'default', tp, { parallelism: 2 })).autovacuumResumed).toBe(0);
    // Partitions made after cutover (partition maintenance) are the application's: no option.
    expect(partitionSql(tp, tp.table, tp.partitions[0])).not.toContain('autovacuum');
    expect(partitionSql(tp, tp.names.partitioned, tp.partitions[0], { copied: true })).toContain(
      'WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
    );
  } finally {
    await pools.end();
  }
}, 300_000);

test('a session holding a partition (a manual VACUUM, say) past the lock budget: the resume waits for it, retrying, and finishes', async () => {
  const { pools, acts, run } = activities('autovacuum-held');
  await db.pool.query(`create table held (id bigint primary key, at timestamptz not null);
    insert into held select g, '2024-01-01'::timestamptz + (g % 90) * interval '1 day' from generate_series(1, 900) g`);
  const holder = await db.pool.connect();
  try {
    const plan = await run(acts.preflight, switchoverInput.parse({ tables: [{ table: 'held', partitionKey: 'at', interval: 'month' }] }));
    const tp = plan.tables[0];
    await run(acts.claimTables, 'default', plan.tables);
    await run(acts.prepareTable, 'default', tp);
    const parts = await paused('held_partitioned');
    // deadlock_timeout 1 s here: each try waits at most 750 ms, so the first gives up.
    await holder.query(`begin; lock table ${parts[1].relname} in share update exclusive mode`);
    const released = new Promise((r) => setTimeout(r, 1200)).then(() => holder.query('commit'));
    const t0 = Date.now();
    const resumed = await resumeAutovacuum(pools.get('default'), tp);
    const ms = Date.now() - t0;
    await released;
    expect(resumed).toEqual(parts.map((p) => p.relname));
    expect(ms).toBeGreaterThanOrEqual(1000);
    for (const p of await paused('held_partitioned')) expect([p.own, p.toast]).toEqual([[], []]);
  } finally {
    holder.release();
    await pools.end();
  }
}, 120_000);

test("the table's storage parameters on every partition, premade and maintained ones too; a table with autovacuum off keeps it off", async () => {
  const { pools, acts, run } = activities('autovacuum-tuned');
  await db.pool.query(`
    create table tuned (id bigint primary key, at timestamptz not null, note text not null)
      with (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, toast.autovacuum_vacuum_cost_delay = 5);
    create table manual (id bigint primary key, at timestamptz not null, note text not null) with (autovacuum_enabled = false, toast.autovacuum_enabled = false);
    insert into tuned select g, '2024-01-01'::timestamptz + (g % 60) * interval '1 day', 'n' || g from generate_series(1, 600) g;
    insert into manual select * from tuned;
  `);
  const own = async (rel: string) =>
    (
      await db.pool.query(
        `select coalesce(k.reloptions, '{}') as own, coalesce(t.reloptions, '{}') as toast from pg_class k left join pg_class t on t.oid = k.reltoastrelid where k.oid = $1::regclass`,
        [rel],
      )
    ).rows[0] as { own: string[]; toast: string[] };
  const sorted = (x: { own: string[]; toast: string[] }) => ({ own: [...x.own].sort(), toast: [...x.toast].sort() });
  try {
    for (const table of ['tuned', 'manual']) {
      const legacy = sorted(await own(table));
      const plan = await run(acts.preflight, switchoverInput.parse({ tables: [{ table, partitionKey: 'at', interval: 'month' }], premake: 2 }));
      const tp = plan.tables[0];
      expect(sorted({ own: tp.storage!.table, toast: tp.storage!.toast })).toEqual(legacy);
      await run(acts.claimTables, 'default', plan.tables);
      await run(acts.prepareTable, 'default', tp);
      await db.pool.query(`insert into ${tp.names.partitioned} select * from ${table}`);
      const a = await run(acts.analyzeTable, 'default', tp, { parallelism: 2 });
      // The table with autovacuum off had nothing paused: its partitions keep its own off.
      expect(a.autovacuumResumed).toBe(table === 'tuned' ? tp.partitions.length : 0);
      const parts = (await paused(tp.names.partitioned)).map((p) => p.relname);
      expect(parts.length).toBe(tp.partitions.length);
      for (const p of parts) expect(sorted(await own(p))).toEqual(legacy);
      // A partition made after cutover by partition maintenance carries them too (not paused).
      await db.pool.query(`create table ${table}_scratch (like ${table}) partition by range (at)`);
      await db.pool.query(partitionSql(tp, `${table}_scratch`, { suffix: 'later', name: `${table}_later`, from: '2100-01-01', to: '2100-02-01' }));
      expect(sorted(await own(`${table}_later`))).toEqual(legacy);
    }
  } finally {
    await pools.end();
  }
}, 120_000);
