// The benchmarks' databases (bench/run.ts, bench/attach.ts): the admin connection, a short-lived
// client per database, and the seeded template both clone, kept for the next run.
import pg from 'pg';
import { seed } from '../demo/seed';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function withDb<T>(name: string, fn: (c: pg.Client) => Promise<T>, app = 'ps-bench'): Promise<T> {
  const c = new pg.Client({ connectionString: dbUrl(name), application_name: app });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export const admin = (sql: string) => withDb(new URL(ADMIN_URL).pathname.slice(1) || 'postgres', (c) => c.query(sql));

/** The seeded template `ps_bench_seed_<rows>`: reused while it holds exactly `rows` revenues (`reseed` forces a new one). */
export async function template(rows: number, reseed: boolean, log: (msg: string) => void): Promise<string> {
  const name = `ps_bench_seed_${rows}`;
  const exists = (await admin(`select 1 from pg_database where datname = '${name}'`)).rowCount;
  if (exists && !reseed) {
    const n = await withDb(name, async (c) => Number((await c.query('select count(*) from revenues')).rows[0].count)).catch(() => -1);
    if (n === rows) {
      log(`reusing template ${name}`);
      return name;
    }
  }
  await admin(`drop database if exists ${name} with (force)`);
  await admin(`create database ${name}`);
  log(`seeding ${rows.toLocaleString()} rows into ${name} (once; reused by later runs)`);
  await withDb(name, async (c) => {
    const r = await seed(c, { rows, years: 3 });
    log(`seeded in ${r.seconds.toFixed(1)} s`);
    await c.query('vacuum analyze');
  });
  return name;
}
