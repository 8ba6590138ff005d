// seed() against a real PostgreSQL: each test file gets its own throwaway database.
import { randomBytes } from 'node:crypto';
import { Client, Pool, escapeIdentifier } from 'pg';
import { seed, tableChecksum, DEMO_TABLES } from '../demo/seed';

const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function createDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ps_test_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new Client({ connectionString: BASE_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`create database ${escapeIdentifier(name)}`);
  const url = new URL(BASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${escapeIdentifier(name)} with (force)`) };
}

const ALL = ['organizations', 'revenues', 'expenses', 'daily_cash_balances'];

describe('seed', () => {
  let db: { url: string; drop: () => Promise<void> };
  let client: Client;

  beforeAll(async () => {
    db = await createDatabase();
    client = new Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  const one = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows[0] as T;

  test('creates the schema in an empty database and fills every table over the whole history', async () => {
    const result = await seed(client, { rows: 2000, endDate: '2024-06-30' });
    expect(result.startDate).toBe('2021-07-01');
    expect(result.endDate).toBe('2024-06-30');
    // 1096 days (2024 is a leap year) fit once into 2000 rows: one (org, property) pair.
    expect(result.rows).toEqual({ organizations: 20, revenues: 2000, expenses: 2000, daily_cash_balances: 1096 });

    for (const table of ['revenues', 'expenses']) {
      const r = await one(
        `select count(*)::int as rows,
                min(occurred_at) >= '2021-07-01'::timestamptz and min(occurred_at) < '2021-07-02'::timestamptz as starts_at_start,
                max(occurred_at) >= '2024-06-29'::timestamptz and max(occurred_at) < '2024-07-01'::timestamptz as ends_at_end,
                count(distinct date_trunc('month', occurred_at))::int as months,
                count(distinct organization_id)::int as orgs,
                count(distinct property_id)::int as properties,
                count(distinct status)::int as statuses,
                bool_and(amount_cents >= 0 and created_at = occurred_at) as sane
           from ${table}`,
      );
      expect(r).toEqual({ rows: 2000, starts_at_start: true, ends_at_end: true, months: 36, orgs: 20, properties: 5, statuses: 3, sane: true });
    }
    // ids grow with time, like an application's
    expect(await one(`select bool_and(ordered) as ok from (select occurred_at >= lag(occurred_at) over (order by id) as ordered from revenues) x`)).toEqual({
      ok: true,
    });
    expect(await one(`select count(distinct category)::int as n from expenses`)).toEqual({ n: 5 });

    const b = await one(
      `select count(*)::int as rows, count(distinct (organization_id, property_id, balance_date))::int as distinct_keys,
              min(balance_date)::text as first, max(balance_date)::text as last
         from daily_cash_balances`,
    );
    expect(b).toEqual({ rows: 1096, distinct_keys: 1096, first: '2021-07-01', last: '2024-06-30' });
    // A day opens with the previous day's closing balance.
    expect(
      await one(`select count(*)::int as breaks from (
                   select opening_cents <> lag(closing_cents) over (partition by organization_id, property_id order by balance_date) as brk
                     from daily_cash_balances) x where brk`),
    ).toEqual({ breaks: 0 });
  });

  test('the same arguments give identical data (also through a pool)', async () => {
    const before: Record<string, unknown> = {};
    for (const t of ALL) before[t] = await tableChecksum(client, t);
    const pool = new Pool({ connectionString: db.url, max: 3 });
    try {
      const again = await seed(pool, { rows: 2000, endDate: '2024-06-30', reset: true });
      expect(again.rows.revenues).toBe(2000);
      for (const t of ALL) expect(await tableChecksum(pool, t)).toEqual(before[t]);
    } finally {
      await pool.end();
    }
    // and different arguments give different data
    await seed(client, { rows: 2000, endDate: '2024-07-31', reset: true });
    expect(await tableChecksum(client, 'revenues')).not.toEqual(before.revenues);
  });

  test('seeding again without reset keeps the schema and appends ledger rows', async () => {
    await seed(client, { rows: 2000, endDate: '2024-06-30', reset: true });
    const second = await seed(client, { rows: 500, endDate: '2024-06-30' });
    expect(second.rows).toEqual({ organizations: 0, revenues: 500, expenses: 500, daily_cash_balances: 0 });
    expect(await one(`select (select count(*) from revenues)::int as r, (select count(*) from organizations)::int as o`)).toEqual({ r: 2500, o: 20 });
  });

  test('daily balances are capped to rows', async () => {
    // 300 rows < 1096 days: the latest 300 days of one pair
    const small = await seed(client, { rows: 300, endDate: '2024-06-30', reset: true });
    expect(small.rows.daily_cash_balances).toBe(300);
    expect(await one(`select min(balance_date)::text as first, max(balance_date)::text as last from daily_cash_balances`)).toEqual({
      first: '2023-09-05',
      last: '2024-06-30',
    });
    // one year (366 days to 2024-06-30) and 5000 rows: 13 whole pairs
    const year = await seed(client, { rows: 5000, years: 1, organizations: 4, endDate: '2024-06-30', reset: true });
    expect(year.rows).toEqual({ organizations: 4, revenues: 5000, expenses: 5000, daily_cash_balances: 13 * 366 });
    expect(
      await one(`select count(distinct (organization_id, property_id))::int as pairs, count(distinct organization_id)::int as orgs from daily_cash_balances`),
    ).toEqual({ pairs: 13, orgs: 3 });
  });

  test('DEMO_TABLES names existing tables and key columns', async () => {
    for (const t of DEMO_TABLES) {
      const r = await one(`select data_type from information_schema.columns where table_schema = 'public' and table_name = $1 and column_name = $2`, [
        t.table,
        t.partitionKey,
      ]);
      expect(r).toBeDefined();
      expect(t.interval).toBe('month');
    }
  });
});
