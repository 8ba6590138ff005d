// The live writer against a real, freshly seeded database.
import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { seed } from '../demo/seed';
import { startLoad, OP_KINDS } from '../demo/load';

const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SEEDED = 2000;

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('live writer', () => {
  let db: { url: string; drop: () => Promise<void> };
  let client: Client;

  beforeAll(async () => {
    db = await createDatabase();
    client = new Client({ connectionString: db.url });
    await client.connect();
    // ends today, so the writer's "recent" rows and balances land next to the seeded ones
    await seed(client, { rows: SEEDED });
  });
  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  const one = async (sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows[0];

  test('runs every kind of op at the requested rate without failures, and the rows show it', async () => {
    const startedAt = (await one('select now() as t')).t as Date;
    const load = startLoad({ connectionString: db.url, ratePerSec: 300, durationMs: 3000, concurrency: 4 });
    load.mark('first');
    await sleep(1500);
    load.mark('second');
    const report = await load.done;

    expect(report.errors).toEqual([]);
    expect(report.failures).toBe(0);
    expect(report.ops).toBeGreaterThanOrEqual(600);
    expect(report.ops).toBeLessThanOrEqual(300 * 3 + 60); // rate-limited, small catch-up allowance
    for (const kind of OP_KINDS) expect(report.byKind[kind].ops).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.p99).toBeGreaterThanOrEqual(report.latencyMs.p50);
    expect(report.windows.reduce((s, w) => s + w.ops, 0)).toBe(report.ops);
    expect(report.windows.length).toBeGreaterThanOrEqual(3);
    expect(Object.keys(report.segments).sort()).toEqual(['first', 'second']);
    expect(report.segments.first.ops + report.segments.second.ops).toBe(report.ops);
    expect(report.segments.first.ops).toBeGreaterThan(200);
    expect(report.segments.second.ops).toBeGreaterThan(200);

    // Seeded rows have created_at = occurred_at = updated_at: corrections moved the partition
    // key of some, status updates touched updated_at of some, voids deleted some.
    const seeded = await one(
      `select (select count(*) from revenues where id <= $1 and occurred_at <> created_at)::int as moved,
              (select count(*) from revenues where id <= $1 and updated_at > created_at)::int
                + (select count(*) from expenses where id <= $1 and updated_at > created_at)::int as updated,
              (select $1 - count(*) from expenses where id <= $1)::int as deleted`,
      [SEEDED],
    );
    // Every id beyond the seed is one of our inserts; voids may have deleted some of those.
    const inserted = await one(
      `select (select count(*) from revenues where id > $1)::int as revenues, (select count(*) from expenses where id > $1)::int as expenses`,
      [SEEDED],
    );
    expect(inserted).toEqual({
      revenues: report.byKind.insertRevenue.rows,
      expenses: report.byKind.insertExpense.rows - (report.byKind.void.rows - seeded.deleted),
    });
    expect(seeded.moved).toBeGreaterThan(0);
    expect(seeded.updated).toBeGreaterThan(0);
    expect(seeded.deleted).toBeGreaterThan(0);
    expect(report.byKind.correction.rows).toBeGreaterThanOrEqual(seeded.moved);
    // Upserts: inserted or updated balances carry a fresh updated_at; keys stay unique.
    const balances = await one(
      `select count(*) filter (where updated_at >= $1)::int as touched,
              count(*)::int - count(distinct (organization_id, property_id, balance_date))::int as dupes
         from daily_cash_balances`,
      [startedAt],
    );
    expect(balances.touched).toBeGreaterThan(0);
    expect(balances.touched).toBeLessThanOrEqual(report.byKind.upsertBalance.rows);
    expect(balances.dupes).toBe(0);
  });

  test('pause holds every op, resume continues, stop ends early with the same report as done', async () => {
    const load = startLoad({ connectionString: db.url, ratePerSec: 200, mix: { void: 0 } });
    await sleep(400);
    load.pause();
    await sleep(100); // let in-flight ops finish
    const pausedAt = load.report().ops;
    expect(pausedAt).toBeGreaterThan(0);
    await sleep(400);
    expect(load.report().ops).toBe(pausedAt);
    load.resume();
    await sleep(400);
    const report = await load.stop();
    expect(report.ops).toBeGreaterThan(pausedAt);
    expect(report.failures).toBe(0);
    expect(report.byKind.void).toBeUndefined(); // weight 0: never run
    expect(await load.done).toBe(report);
    await sleep(100);
    expect(load.report().ops).toBe(report.ops);
  });

  test('failed ops are counted and their messages kept, never thrown', async () => {
    // nothing listens on port 1
    const load = startLoad({ connectionString: 'postgres://postgres@127.0.0.1:1/nowhere', ratePerSec: 50, durationMs: 500 });
    const report = await load.done;
    expect(report.ops).toBeGreaterThan(0);
    expect(report.failures).toBe(report.ops);
    expect(report.errors.length).toBeGreaterThan(0);
    expect(report.errors.length).toBeLessThanOrEqual(20);
    expect(report.errors.join('\n')).toMatch(/ECONNREFUSED/);
  });
});
