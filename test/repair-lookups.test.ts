// The re-check's repair finds every row by index (activities/recheck.ts, sql/session/index_lookups.sql):
// its DELETE by the table's key without the partition key was planned as a hash join over a
// sequential scan of every partition, so its time grew with the table (10M rows: past the lock
// budget, the switchover rolled back). Keys per transaction shrink as partitions grow.
import { keysPerRepair } from '../activities/recheck';
import { repairSql } from '../src/copysql';
import { sqlFile } from '../src/db';
import { col, revenuesPlan } from './fixtures';
import { createTestDb, type TestDb } from './helpers';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
  // As during the copy: 49 monthly partitions filled, never analyzed.
  await db.pool.query(`
    create table revenues (id bigint primary key, occurred_at timestamptz not null, status text not null);
    insert into revenues select g, timestamptz '2023-01-01' + (g % 1460) * interval '1 day', 'posted' from generate_series(1, 60000) g;
    create table revenues_partitioned (like revenues) partition by range (occurred_at);
    do $$ declare m date := '2023-01-01'; begin
      while m < '2027-02-01' loop
        execute format('create table %I partition of revenues_partitioned for values from (%L) to (%L)', 'revenues_p' || to_char(m, 'YYYYMM'), m, m + interval '1 month');
        m := m + interval '1 month';
      end loop;
    end $$;
    alter table revenues_partitioned add primary key (id, occurred_at);
    insert into revenues_partitioned select * from revenues;`);
});
afterAll(async () => db?.drop());

test('keys per repair transaction: 1,000, fewer as partitions grow, never under 20', () => {
  expect(keysPerRepair(1)).toBe(1000);
  expect(keysPerRepair(40)).toBe(1000);
  expect(keysPerRepair(49)).toBe(816);
  expect(keysPerRepair(365)).toBe(109);
  expect(keysPerRepair(5000)).toBe(20);
});

test('every repair statement finds its rows by index with the repair settings; without them the DELETE scans every partition', async () => {
  const tp = revenuesPlan(col('status', 'text'));
  const keys = JSON.stringify(Array.from({ length: keysPerRepair(49) }, (_, i) => [String(1 + i * 73)]));
  const plan = async (sql: string) => (await db.pool.query(`explain ${sql}`, [keys])).rows.map((r) => r['QUERY PLAN'] as string).join('\n');
  const [lock, del, ins] = repairSql(tp);
  expect(await plan(del)).toMatch(/Seq Scan on revenues_p2024/);
  const c = await db.pool.connect();
  try {
    await c.query('begin');
    await c.query(sqlFile('session/index_lookups'));
    for (const sql of [lock, del, ins]) {
      const p = (await c.query(`explain ${sql}`, [keys])).rows.map((r) => r['QUERY PLAN'] as string).join('\n');
      expect(p).not.toMatch(/Seq Scan on revenues/);
      expect(p).toMatch(/Index (Only )?Scan using revenues/);
    }
    // The DELETE really removes the rows of those keys, and only them.
    const deleted = (await c.query(del, [keys])).rowCount;
    expect(deleted).toBe(keysPerRepair(49));
    await c.query('rollback');
  } finally {
    c.release();
  }
});
