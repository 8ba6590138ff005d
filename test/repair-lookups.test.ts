// The re-check's repair finds every row by index (activities/recheck.ts, sql/session/index_lookups.sql):
// its DELETE by the table's key without the partition key was planned as a hash join over a
// sequential scan of every partition, so its time grew with the table (10M rows: past the lock
// budget, the switchover rolled back). Keys per transaction shrink as partitions grow, and as the
// lock budget needs: a transaction that runs out of it is tried again with half the keys.
import pg from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { keysPerRepair, repair } from '../activities/recheck';
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

test('a repair transaction that runs past the lock budget is tried again with half the keys: every row repaired, none left out', async () => {
  const tp = revenuesPlan(col('status', 'text'), {
    partitions: Array.from({ length: 49 }, (_, i) => ({ suffix: `p${i}`, from: String(i), to: String(i + 1) })),
  });
  // 3,000 rows the copy got wrong (changed behind the trigger), spread over every partition.
  const keys = Array.from({ length: 3000 }, (_, i) => [String(7 + i * 19)]);
  await db.pool.query(`update revenues_partitioned set status = 'stale' where id = any($1::bigint[])`, [keys.map((k) => k[0])]);
  // A budget of 15 ms (deadlock_timeout 20 ms): far less than 816 keys looked up in 49 partitions take.
  await db.pool.query(`alter database ${db.name} set deadlock_timeout = '20ms'`);
  const env = new MockActivityEnvironment();
  const sizes: number[] = [];
  env.on('heartbeat', (d: { keysPerTransaction?: number }) => d?.keysPerTransaction && sizes.push(d.keysPerTransaction));
  // A new connection, so it has the setting.
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  const c = await pool.connect();
  try {
    expect(Number((await c.query(`select setting from pg_settings where name = 'deadlock_timeout'`)).rows[0].setting)).toBe(20);
    await env.run(() => repair(c, tp, keys));
  } finally {
    c.release();
    await pool.end();
    await db.pool.query(`alter database ${db.name} reset deadlock_timeout`);
  }
  expect(Math.min(...sizes)).toBeLessThan(keysPerRepair(49));
  const left = await db.pool.query(`select count(*)::int as n from revenues_partitioned where status = 'stale'`);
  expect(left.rows[0].n).toBe(0);
  const differ = await db.pool.query(
    `select count(*)::int as n from revenues r full join revenues_partitioned p using (id, occurred_at) where r is distinct from p or r.status is distinct from p.status`,
  );
  expect(differ.rows[0].n).toBe(0);
});

test('a repair transaction that waits for a row a writer holds keeps its keys and waits with the usual tries: every row repaired', async () => {
  const tp = revenuesPlan(col('status', 'text'), {
    partitions: Array.from({ length: 49 }, (_, i) => ({ suffix: `p${i}`, from: String(i), to: String(i + 1) })),
  });
  const keys = Array.from({ length: 2000 }, (_, i) => [String(11 + i * 23)]);
  await db.pool.query(`update revenues_partitioned set status = 'stale' where id = any($1::bigint[])`, [keys.map((k) => k[0])]);
  // A writer holds the first key's legacy row for 1.5 s: past one budget (750 ms), within the tries.
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  await writer.query('begin');
  await writer.query(`update revenues set status = status where id = $1`, [keys[0][0]]);
  const released = new Promise<void>((r) => setTimeout(() => r(writer.query('commit').then(() => undefined)), 1500));
  const env = new MockActivityEnvironment();
  const sizes: number[] = [];
  env.on('heartbeat', (d: { keysPerTransaction?: number }) => d?.keysPerTransaction && sizes.push(d.keysPerTransaction));
  const c = await db.pool.connect();
  try {
    expect(Number((await c.query(`select setting from pg_settings where name = 'deadlock_timeout'`)).rows[0].setting)).toBe(1000);
    await env.run(() => repair(c, tp, keys, 0, db.pool));
  } finally {
    c.release();
    await released;
    await writer.end();
  }
  // Halving (what a transaction whose own statements ran out of the budget does) would have
  // shrunk the transactions while the writer held its row: 816, 408, 204 ...
  expect(Math.min(...sizes)).toBe(keysPerRepair(49));
  const left = await db.pool.query(`select count(*)::int as n from revenues_partitioned where status = 'stale'`);
  expect(left.rows[0].n).toBe(0);
});
