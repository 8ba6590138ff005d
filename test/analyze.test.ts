// Statistics before cutover in parallel sessions (activities/analyze.ts, issue 23 item 3): every
// partition analyzed exactly once (the parent's pass skips them all), the parent's own statistics
// gathered, writers pass, and a partition another session holds makes it fall back to the one
// plain ANALYZE with its retries.
import pg from 'pg';
import { analyzePartitioned, shares } from '../activities/analyze';
import { createTestDb, type TestDb } from './helpers';

let db: TestDb;
const PARTS = 9;
let nextId = 100000;

beforeAll(async () => {
  db = await createTestDb();
  const parts = Array.from(
    { length: PARTS },
    (_, i) =>
      `create table m_p${i} partition of m for values from ('2024-${String(i + 1).padStart(2, '0')}-01') to ('2024-${String(i + 2).padStart(2, '0')}-01');`,
  ).join('\n');
  await db.pool.query(`
    create table m (id bigint, at timestamptz not null, status text not null, amount bigint not null, primary key (id, at)) partition by range (at);
    ${parts}
    create index on m (status);
    insert into m select g, '2024-01-01'::timestamptz + (g % 270) * interval '1 day', (array['open','paid','void'])[1 + g % 3], g from generate_series(1, 30000) g;
    create table plain (id bigint primary key, v int);
    insert into plain select g, g from generate_series(1, 100) g;
  `);
});
afterAll(() => db?.drop());

async function analyzed(): Promise<{ parent: number; counts: Record<string, number> }> {
  const c = await db.pool.connect();
  try {
    await c.query('select pg_stat_clear_snapshot()');
    const counts = (await c.query(`select relname, analyze_count::int as n from pg_stat_all_tables where relname like 'm\\_p%' order by 1`)).rows;
    const parent = (await c.query(`select count(*)::int as n from pg_statistic where starelid = 'm'::regclass and stainherit`)).rows[0].n;
    return { parent, counts: Object.fromEntries(counts.map((r) => [r.relname, r.n])) };
  } finally {
    c.release();
  }
}

const resetStats = () =>
  db.pool.query(
    `select pg_stat_reset(); delete from pg_statistic where starelid in (select inhrelid from pg_inherits where inhparent = 'm'::regclass) or starelid = 'm'::regclass`,
  );

test('shares: every partition in exactly one session, round robin', () => {
  expect(shares(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([
    ['a', 'c', 'e'],
    ['b', 'd'],
  ]);
  expect(shares(['a'], 1)).toEqual([['a']]);
});

test.each([1, 2, 3, 16])('parallelism %i: each partition analyzed once, the parent statistics gathered, writers pass', async (parallelism) => {
  await resetStats();
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  let stop = false;
  let writes = 0;
  const writing = (async () => {
    while (!stop) {
      await writer.query(`insert into m values ($1, '2024-03-03', 'open', 1)`, [nextId++]);
      writes++;
    }
  })();
  try {
    expect(await analyzePartitioned(db.pool, 'public', 'm', parallelism)).toBeNull();
  } finally {
    stop = true;
    await writing;
    await writer.end();
  }
  expect(writes).toBeGreaterThan(0);
  const a = await analyzed();
  expect(Object.keys(a.counts)).toHaveLength(PARTS);
  // Once each: the parent's pass (SKIP_LOCKED) did not analyze a partition again.
  expect(Object.values(a.counts)).toEqual(Array(PARTS).fill(1));
  // The parent's own statistics (one row per column), which autovacuum never gathers.
  expect(a.parent).toBe(4);
  const tuples = (
    await db.pool.query(`select sum(reltuples)::bigint as n from pg_class where oid in (select inhrelid from pg_inherits where inhparent = 'm'::regclass)`)
  ).rows[0].n;
  expect(Number(tuples)).toBeGreaterThanOrEqual(30000);
});

test('a session holding a partition: the plain ANALYZE of the parent takes over and waits its turn, nothing half kept', async () => {
  await resetStats();
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  await holder.query('begin');
  await holder.query('lock table m_p4 in share update exclusive mode');
  // Released after the parallel attempt gave up and while the plain ANALYZE retries.
  const release = new Promise((r) => setTimeout(r, 1200)).then(() => holder.query('commit'));
  try {
    expect(await analyzePartitioned(db.pool, 'public', 'm', 2)).toBeNull();
  } finally {
    await release;
    await holder.end();
  }
  const a = await analyzed();
  // The parallel attempt rolled back (its partitions' statistics not kept), then one ANALYZE of the
  // parent analyzed every partition: each counted once or twice (a rolled-back ANALYZE still counts),
  // and the parent's statistics exist.
  expect(a.parent).toBe(4);
  expect(Object.values(a.counts).every((n) => n >= 1 && n <= 2)).toBe(true);
  expect(a.counts.m_p4).toBe(1);
});

test('held for good: skipped, with the reason, after the plain ANALYZE tried three times', async () => {
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  await holder.query('begin');
  await holder.query('lock table m_p2 in share update exclusive mode');
  try {
    expect(await analyzePartitioned(db.pool, 'public', 'm', 2)).toMatch(/^ANALYZE "public"\."m" skipped: canceling statement due to lock timeout/);
  } finally {
    await holder.query('commit');
    await holder.end();
  }
});

test('a table without partitions: one plain ANALYZE', async () => {
  expect(await analyzePartitioned(db.pool, 'public', 'plain', 2)).toBeNull();
  const n = (await db.pool.query(`select count(*)::int as n from pg_statistic where starelid = 'plain'::regclass`)).rows[0].n;
  expect(n).toBe(2);
});
