// Demo data for the hospitality finance schema (demo/schema.sql).
// All rows are generated server side (insert ... select ... generate_series): nothing goes
// through Node, so 300k rows per table take seconds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Pool, escapeIdentifier, type ClientBase } from 'pg';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const SCHEMA_FILE = join(__dirname, 'schema.sql');

/** The demo tables a switchover moves, with the key and interval they are partitioned by. */
export const DEMO_TABLES = [
  { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' },
  { table: 'expenses', partitionKey: 'occurred_at', interval: 'month' },
  { table: 'daily_cash_balances', partitionKey: 'balance_date', interval: 'month' },
] as const;

export const PROPERTIES_PER_ORG = 5;
export const REVENUE_CATEGORIES = ['rooms', 'food_beverage', 'spa', 'events', 'parking', 'other'];
export const EXPENSE_CATEGORIES = ['payroll', 'utilities', 'supplies', 'maintenance', 'marketing'];
export const VENDORS = ['Sysco', 'PG&E', 'Ecolab', 'Otis', 'Hilton Supply', 'Cintas', 'Comcast', 'Local Farms'];
export const STATUSES = ['pending', 'posted', 'void'];

export interface SeedOptions {
  /** Rows in revenues and in expenses; daily_cash_balances is capped to it. */
  rows: number;
  /** Years of history, ending at endDate. Default 3. */
  years?: number;
  /** Default 20. */
  organizations?: number;
  /** Last day of the history, YYYY-MM-DD. Default current_date. */
  endDate?: string;
  /** Truncate the four tables (restart identity) first, so the same args give the same ids. */
  reset?: boolean;
}

export interface SeedResult {
  startDate: string;
  endDate: string;
  /** Rows inserted by this call, per table. */
  rows: { organizations: number; revenues: number; expenses: number; daily_cash_balances: number };
  seconds: number;
}

const ALL_TABLES = ['organizations', 'revenues', 'expenses', 'daily_cash_balances'];

export async function seed(client: ClientBase | Pool, opts: SeedOptions): Promise<SeedResult> {
  const rows = opts.rows;
  const years = opts.years ?? 3;
  const orgCount = opts.organizations ?? 20;
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(years) || years < 1) throw new Error(`years must be a positive integer, got ${years}`);
  if (!Number.isInteger(orgCount) || orgCount < 1) throw new Error(`organizations must be >= 1, got ${orgCount}`);

  // setseed() is per session: with a pool every statement must run on the same connection.
  const owned = client instanceof Pool ? await client.connect() : null;
  const c: ClientBase = owned ?? (client as ClientBase);
  const started = performance.now();
  try {
    await c.query('begin');
    await ensureSchema(c);
    if (opts.reset) await c.query(`truncate ${ALL_TABLES.join(', ')} restart identity cascade`);
    // Foreign key checks are half the insert time, and the rows are valid by construction (org
    // ids are read from organizations). Replica mode skips them, but it also skips every other
    // trigger, so use it only as superuser and only while the database has no trigger of its own
    // (e.g. a switchover's sync trigger, which must see every row).
    const fast = await c.query<{ ok: boolean }>(
      `select current_setting('is_superuser') = 'on' and not exists (select 1 from pg_trigger where not tgisinternal) as ok`,
    );
    if (fast.rows[0].ok) await c.query('set local session_replication_role = replica');

    // History is [startDate 00:00, endDate + 1 day 00:00): exactly `years` years ending at endDate.
    const range = await c.query<{ start_date: string; end_date: string; days: number }>(
      `select s::text as start_date, e::text as end_date, (e - s + 1)::int as days
         from (select coalesce($1::date, current_date) as e) x,
              lateral (select (e - make_interval(years => $2::int))::date + 1 as s) y`,
      [opts.endDate ?? null, years],
    );
    const { start_date: startDate, end_date: endDate, days } = range.rows[0];

    // Organizations first (fixed names and created_at so checksums are reproducible); reuse any
    // that exist already.
    const orgs = await c.query(
      `insert into organizations (name, created_at)
       select format('Hospitality Group %s', to_char(g, 'FM000')), $2::date::timestamptz
         from generate_series((select count(*) from organizations) + 1, $1::int) g`,
      [orgCount, startDate],
    );

    // Shared by the two ledgers. Params: $1 orgs, $2 rows, $3 start, $4 end, $5 properties per
    // org, $6 categories (, $7 vendors). The first $1 organizations as an array.
    const orgIds = `(select array_agg(id order by id) from (select id from organizations order by id limit $1) o)`;
    const pick = (param: string) => `(${param}::text[])[1 + floor(random() * cardinality(${param}::text[]))::int]`;
    // Stratified time: row g falls in the g-th slice of the history, so ids grow with time
    // like a real application's, and the whole range is covered even for small row counts.
    const occurredAt = `$3::date::timestamptz + ((g - 1 + random()) / $2::int) * (($4::date + 1) - $3::date) * interval '1 day'`;
    const status = `case when random() < 0.85 then 'posted' when random() < 0.67 then 'pending' else 'void' end`;
    const from = `from ${orgIds} o(ids), generate_series(1, $2::int) g, lateral (select ${occurredAt} as at) t`;
    const ledgerParams = [orgCount, rows, startDate, endDate, PROPERTIES_PER_ORG];

    // One seed for the whole run: every table draws from the same session sequence in a fixed
    // order, so the same args give the same data (and revenues and expenses differ).
    await c.query('select setseed(0.42)');
    const revenues = await c.query(
      `insert into revenues (organization_id, property_id, occurred_at, amount_cents, category, status, description, created_at, updated_at)
       select o.ids[1 + floor(random() * cardinality(o.ids))::int], 1 + floor(random() * $5::int)::int,
              t.at, (500 + random() * 250000)::bigint, ${pick('$6')}, ${status},
              format('Folio %s', g), t.at, t.at
         ${from}`,
      [...ledgerParams, REVENUE_CATEGORIES],
    );

    const expenses = await c.query(
      `insert into expenses (organization_id, property_id, occurred_at, amount_cents, category, status, vendor, created_at, updated_at)
       select o.ids[1 + floor(random() * cardinality(o.ids))::int], 1 + floor(random() * $5::int)::int,
              t.at, (500 + random() * 120000)::bigint, ${pick('$6')}, ${status},
              ${pick('$7')}, t.at, t.at
         ${from}`,
      [...ledgerParams, EXPENSE_CATEGORIES, VENDORS],
    );

    // One row per (org, property, day), capped to `rows`: take as many (org, property) pairs as
    // fit over the whole history, and if not even one fits, only the latest `rows` days.
    // opening = previous day's closing, through a running sum of random daily movements.
    const pairs = Math.max(1, Math.min(orgCount * PROPERTIES_PER_ORG, Math.floor(rows / days)));
    const balanceDays = Math.min(days, rows);
    const balances = await c.query(
      `with pairs as (
         select o.id as organization_id, p as property_id
           from (select id from organizations order by id limit $1) o, generate_series(1, $5::int) p
          order by o.id, p
          limit $2
       ), days as (
         select d::date as balance_date
           from generate_series($3::date - ($4::int - 1), $3::date, interval '1 day') d
       ), moves as (
         select organization_id, property_id, balance_date,
                (random() * 300000 - 140000)::bigint as delta
           from pairs, days
          order by organization_id, property_id, balance_date
       )
       insert into daily_cash_balances (organization_id, property_id, balance_date, opening_cents, closing_cents, updated_at)
       select organization_id, property_id, balance_date,
              5000000 + sum(delta) over w - delta, 5000000 + sum(delta) over w, balance_date::timestamptz
         from moves
       window w as (partition by organization_id, property_id order by balance_date)
       -- seeding again without reset adds ledger rows but keeps existing balances
       on conflict (organization_id, property_id, balance_date) do nothing`,
      [orgCount, rows === 0 ? 0 : pairs, endDate, balanceDays, PROPERTIES_PER_ORG],
    );

    // Fresh statistics, so the switchover's row estimates and the writer's plans are sane.
    for (const t of ALL_TABLES) await c.query(`analyze ${t}`);
    await c.query('commit');
    return {
      startDate,
      endDate,
      rows: {
        organizations: orgs.rowCount ?? 0,
        revenues: revenues.rowCount ?? 0,
        expenses: expenses.rowCount ?? 0,
        daily_cash_balances: balances.rowCount ?? 0,
      },
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    owned?.release();
  }
}

/** Creates the demo schema when none of its tables exist; refuses a half-created one. */
export async function ensureSchema(c: ClientBase): Promise<boolean> {
  const res = await c.query<{ name: string; found: boolean }>(
    `select name, to_regclass(format('public.%I', name)) is not null as found from unnest($1::text[]) name`,
    [ALL_TABLES],
  );
  const found = res.rows.filter((r) => r.found).map((r) => r.name);
  if (found.length === ALL_TABLES.length) return false;
  if (found.length > 0) throw new Error(`demo schema is incomplete: only ${found.join(', ')} exist`);
  await c.query(readFileSync(SCHEMA_FILE, 'utf8'));
  return true;
}

/** Row count and a checksum of the rows taken in id order, so physical order doesn't matter. */
export async function tableChecksum(c: ClientBase | Pool, table: string): Promise<{ rows: number; md5: string }> {
  const t = escapeIdentifier(table);
  const res = await c.query<{ rows: number; md5: string }>(
    `select count(*)::int as rows, coalesce(md5(string_agg(md5(x::text), '' order by x.id)), '') as md5 from ${t} x`,
  );
  return res.rows[0];
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      years: { type: 'string' },
      organizations: { type: 'string' },
      'end-date': { type: 'string' },
      'database-url': { type: 'string' },
      reset: { type: 'boolean', default: false },
    },
  });
  if (!values.rows) throw new Error('usage: tsx demo/seed.ts --rows N [--years Y] [--organizations N] [--end-date YYYY-MM-DD] [--reset] [--database-url URL]');
  const client = new Client({ connectionString: values['database-url'] ?? process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL });
  await client.connect();
  try {
    const result = await seed(client, {
      rows: Number(values.rows),
      years: values.years ? Number(values.years) : undefined,
      organizations: values.organizations ? Number(values.organizations) : undefined,
      endDate: values['end-date'],
      reset: values.reset,
    });
    console.log(`seeded ${result.startDate} .. ${result.endDate} in ${result.seconds.toFixed(2)} s`);
    for (const [table, n] of Object.entries(result.rows)) console.log(`  ${table.padEnd(20)} ${n}`);
  } finally {
    await client.end();
  }
}

if (require.main === module)
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
