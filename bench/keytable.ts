// What the key table of the foreign keys into a table costs per write (README "Foreign keys into
// the table: the key table"): `npm run bench:keytable -- [--ops N] [--rounds R]`. Two partitioned
// tables alike (12 monthly partitions, primary key (id, at)), one with the key table and its
// triggers as the cutover leaves them (src/keytablesql.ts); single-row statements on one
// connection, each its own transaction with synchronous_commit off (insert, update of another column, update moving the row to
// another partition, update of the id, delete), and one 10,000-row INSERT ... SELECT (a bulk
// insert), alternating the two tables per round. Output: bench/results/keytable.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { admin, withDb } from './db';
import { keyTableNames, keyTableSql, keyTriggersSql } from '../src/keytablesql';
import type { TablePlan } from '../src/types';

const DB = 'ps_bench_keytable';
const log = (msg: string) => console.error(`[bench:keytable ${new Date().toISOString().slice(11, 19)}] ${msg}`);

async function setup(c: pg.Client, table: string, keyed: boolean) {
  await c.query(`create table ${table} (id bigint not null, at timestamptz not null, amount bigint not null, primary key (id, at)) partition by range (at)`);
  for (let m = 0; m < 12; m++) {
    await c.query(
      `create table ${table}_p${m} partition of ${table} for values from ('2026-01-01'::timestamptz + interval '${m} months') to ('2026-01-01'::timestamptz + interval '${m + 1} months')`,
    );
  }
  if (!keyed) return;
  const tp = { schema: 'public', table, names: { partitioned: table } } as TablePlan;
  const kt = { ...keyTableNames(table), columns: [{ name: 'id', type: 'bigint' }], foreignKeys: [] };
  for (const s of [...keyTableSql(tp, kt), ...keyTriggersSql(tp, kt, table)]) await c.query(s);
}

/** Microseconds per statement of `n` runs of `sql(i)`. */
async function perOp(c: pg.Client, n: number, sql: (i: number) => [string, unknown[]]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await c.query(...sql(i));
  return ((performance.now() - t0) * 1000) / n;
}

type Figures = Record<string, number>;

async function round(c: pg.Client, table: string, ops: number, base: number): Promise<Figures> {
  const at = (i: number) => `2026-${String((i % 6) + 1).padStart(2, '0')}-15`;
  const f: Figures = {};
  f.insert = await perOp(c, ops, (i) => [`insert into ${table} values ($1, $2, 1)`, [base + i, at(i)]]);
  f['update (other column)'] = await perOp(c, ops, (i) => [`update ${table} set amount = amount + 1 where id = $1 and at = $2`, [base + i, at(i)]]);
  f['update (moves partition)'] = await perOp(c, ops, (i) => [
    `update ${table} set at = at + interval '6 months' where id = $1 and at = $2`,
    [base + i, at(i)],
  ]);
  f['update (id)'] = await perOp(c, ops, (i) => [`update ${table} set id = id + 1000000000 where id = $1`, [base + i]]);
  f.delete = await perOp(c, ops, (i) => [`delete from ${table} where id = $1`, [base + i + 1000000000]]);
  const t0 = performance.now();
  await c.query(
    `insert into ${table} select g, '2026-03-01'::timestamptz + (g % 90) * interval '1 day', 1 from generate_series($1::bigint, $1::bigint + 9999) g`,
    [base + 5000000],
  );
  f['10,000-row INSERT ... SELECT (ms)'] = performance.now() - t0;
  await c.query(`delete from ${table} where id >= $1`, [base + 5000000]);
  return f;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const { values } = parseArgs({ options: { ops: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' } } });
  const ops = Number(values.ops);
  const rounds = Number(values.rounds);
  await admin(`drop database if exists ${DB} with (force)`);
  await admin(`create database ${DB}`);
  const results: Record<'plain' | 'keyed', Figures[]> = { plain: [], keyed: [] };
  try {
    await withDb(DB, async (c) => {
      // The triggers' work, not the commit's flush, which varies more than it on a shared machine.
      await c.query('set synchronous_commit = off');
      await setup(c, 'plain', false);
      await setup(c, 'keyed', true);
      for (let r = 0; r < rounds; r++) {
        for (const t of r % 2 ? (['keyed', 'plain'] as const) : (['plain', 'keyed'] as const)) {
          results[t].push(await round(c, t, ops, r * 100000));
          log(`round ${r + 1}/${rounds} ${t}: ${JSON.stringify(results[t][r], (_, v) => (typeof v === 'number' ? Math.round(v) : v))}`);
        }
      }
    });
  } finally {
    await admin(`drop database if exists ${DB} with (force)`);
  }
  const lines = Object.keys(results.plain[0]).map((k) => {
    const [p, q] = [median(results.plain.map((x) => x[k])), median(results.keyed.map((x) => x[k]))];
    const unit = k.endsWith('(ms)') ? '' : ' µs';
    return `| ${k} | ${p.toFixed(0)}${unit} | ${q.toFixed(0)}${unit} | ${(q - p).toFixed(0)}${unit} (${((q / p - 1) * 100).toFixed(0)}%) |`;
  });
  const md = [
    `# The key table's cost per write`,
    ``,
    `${new Date().toISOString()}; ${ops} single-row statements of each kind per round (each its own transaction, one connection, synchronous_commit off), median of ${rounds} rounds; ` +
      `a partitioned table of 12 monthly partitions, primary key (id, at), without and with \`<table>_keys\` and its triggers.`,
    ``,
    `| statement | without | with the key table | difference |`,
    `|---|---:|---:|---:|`,
    ...lines,
  ].join('\n');
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'keytable.md'), `${md}\n`);
  console.log(md);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
