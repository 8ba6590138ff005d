// A load generator for any table the switchover accepts, derived from the catalog: the writes
// an application makes (insert, update, a partition-key move, delete), sent as plain SQL that
// names the table, so after cutover the same statements reach the partitioned table.
//
// planLoad reads the catalog once and returns a plain description (JSON, no functions: it can be
// recorded in a workflow's history or shown in a report), with the SQL of each operation or the
// reason it cannot run. startLoad runs the plans at a rate and counts what happened per op kind
// and per segment the caller marks ('copy', 'cutover', ...).
//
// What it writes, and why it is safe:
// - insert clones a row it has seen (sampled at start, or inserted itself) with a new key: a key
//   with an identity, serial or uuid default draws its own; an integer key without one takes
//   values above the max read at start, plus a random per-run offset so two runs do not collide.
//   Every other column is copied, so foreign keys point at values that exist.
// - update changes one column that nothing depends on: not in the primary key, not the
//   partition key, not generated, not in a foreign key, unique index or check constraint.
// - move shifts the partition key by whole intervals, within the periods the data spans (plus
//   one on each side; exactly the data's range when a check constraint limits the key).
// - delete removes only rows it inserted itself (by the key its insert returned).
// Nothing here imports the demo (src/seed.ts, src/load.ts) nor any other module of ours.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

const { escapeIdentifier: ident, escapeLiteral: literal } = pg;

export type LoadInterval = 'day' | 'week' | 'month' | 'quarter' | 'year';
export const LOAD_KINDS = ['insert', 'update', 'move', 'delete'] as const;
export type LoadKind = (typeof LOAD_KINDS)[number];
export type LoadMix = Partial<Record<LoadKind, number>>;
export const DEFAULT_LOAD_MIX: Record<LoadKind, number> = { insert: 40, update: 30, move: 15, delete: 15 };

/** An operation the generator can run (with its SQL), or why it cannot. */
export type OpPlan<T> = ({ ok: true; does: string } & T) | { ok: false; reason: string };

export interface TableLoadPlan {
  schema: string;
  table: string;
  partitionKey: string;
  interval: LoadInterval;
  /** Primary key columns with their type (format_type), in key order: the statements' `$1..$n`. */
  key: { name: string; type: string }[];
  foreignKeys: { name: string; columns: string[]; references: string; referencedColumns: string[] }[];
  /** Picks the rows the run starts from (their keys as text). */
  sampleSql: string;
  /** $1..$n: key of the row to clone; $n+1: the new key value when `newKey.how` is 'above-max'. */
  insert: OpPlan<{
    sql: string;
    newKey: { column: string; how: 'default' | 'uuid' } | { column: string; how: 'above-max'; type: string; limit: string; maxSql: string };
  }>;
  /** $1..$n: key; each op picks one of the columns. */
  update: OpPlan<{ columns: { name: string; change: string; sql: string }[] }>;
  /** $1..$n: key, $n+1: the signed interval (e.g. '-2 month'); returns the key after the move. */
  move: OpPlan<{ sql: string; range: { from: string; to: string } }>;
  /** $1..$n: key of a row this run inserted. */
  delete: OpPlan<{ sql: string }>;
}

const SQL_DIR = join(__dirname, '..', 'sql', 'tableload');
const sqlText = (name: string) => readFileSync(join(SQL_DIR, `${name}.sql`), 'utf8');

const INT_LIMITS: Record<string, bigint> = { int2: 32767n, int4: 2147483647n, int8: 9223372036854775807n };
const NUMERIC = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const TEXT = new Set(['text', 'varchar', 'bpchar']);
const KEY_TYPES: Record<string, 'date' | 'timestamp' | 'timestamptz'> = { date: 'date', timestamp: 'timestamp', timestamptz: 'timestamptz' };
/** A default that gives every row a new value (a sequence or a random uuid), not a constant. */
const DRAWS = /nextval\(|gen_random_uuid\(|uuid_generate_v[14]/i;
const SAMPLE_SIZE = 1000;

interface ColumnRow {
  name: string;
  type: string;
  base: string;
  typtype: string;
  typmod: number;
  not_null: boolean;
  generated: boolean;
  identity: '' | 'a' | 'd';
  default: string | null;
}
interface ConstraintRow {
  kind: 'p' | 'u' | 'f' | 'r' | 'c';
  name: string;
  columns: string[];
  has_expressions: boolean;
  ref_table: string | null;
  ref_columns: string[] | null;
}

/**
 * Reads the catalog of `schema.table` and says what load it can generate. Throws only when the
 * table or its partition key is not there (a clear message); every operation it cannot run is
 * returned with its reason instead.
 */
export async function planLoad(
  client: pg.ClientBase | pg.Pool,
  spec: {
    schema: string;
    table: string;
    partitionKey: string;
    interval: LoadInterval;
    /** Keys the load writes stay before this day (YYYY-MM-DD, UTC): the attach strategy's cutoff, which its CHECK enforces until cutover. */
    before?: string;
  },
): Promise<TableLoadPlan> {
  const { schema, table, partitionKey: pk, interval } = spec;
  const t = `${schema}.${table}`;
  const rel = (await client.query(sqlText('table'), [schema, table])).rows[0];
  if (!rel) throw new Error(`load: table ${t} does not exist`);
  if (rel.relkind !== 'r' && rel.relkind !== 'p') throw new Error(`load: ${t} is not a table (relkind ${rel.relkind})`);
  const columns: ColumnRow[] = (await client.query(sqlText('columns'), [rel.oid])).rows;
  const cons: ConstraintRow[] = (await client.query(sqlText('constraints'), [rel.oid])).rows;
  const col = (name: string) => columns.find((c) => c.name === name)!;
  const keyCol = columns.find((c) => c.name === pk);
  const keyType = keyCol && KEY_TYPES[keyCol.base];
  if (!keyCol || !keyType) {
    throw new Error(`load: partition key ${t}.${pk} ${keyCol ? `is of type ${keyCol.type}; it must be date, timestamp or timestamptz` : 'does not exist'}`);
  }
  const primary = cons.find((c) => c.kind === 'p');
  if (!primary || primary.has_expressions) throw new Error(`load: ${t} has no primary key on plain columns; the generator finds its rows by it`);

  const q = `${ident(schema)}.${ident(table)}`;
  const key = primary.columns.map((name) => ({ name, type: col(name).type }));
  const where = key.map((c, i) => `${ident(c.name)} = $${i + 1}::${c.type}`).join(' and ');
  const returning = key.map((c) => `${ident(c.name)}::text`).join(', ');
  const n = key.length;
  const foreignKeys = cons
    .filter((c) => c.kind === 'f')
    .map((c) => ({ name: c.name, columns: c.columns, references: c.ref_table!, referencedColumns: c.ref_columns ?? [] }));
  const inFk = (name: string) => cons.find((c) => c.kind === 'f' && c.columns.includes(name));
  const draws = (c: ColumnRow) => c.identity !== '' || (c.default !== null && DRAWS.test(c.default));

  const k = ident(pk);
  const [asUtc, fromUtc] =
    keyType === 'timestamptz'
      ? [`(${k} at time zone 'UTC')`, (x: string) => `((${x}) at time zone 'UTC')`]
      : keyType === 'date'
        ? [`${k}::timestamp`, (x: string) => `(${x})::date`]
        : [k, (x: string) => `(${x})`];
  const step = literal(interval === 'quarter' ? '3 months' : `1 ${interval}`);
  const checkOnKey = cons.filter((c) => c.kind === 'c' && c.columns.includes(pk));
  // Periods the data spans, one more on each side (a partition exists for each after prepare,
  // or pmin/pmax take them); a check constraint on the key keeps it within the data's own range.
  const range = (
    await client.query(
      checkOnKey.length
        ? `select min(${asUtc})::text as lo, max(${asUtc})::text as hi from ${q}`
        : `select (date_trunc(${literal(interval)}, min(${asUtc})) - ${step}::interval)::text as lo,
                  (date_trunc(${literal(interval)}, max(${asUtc})) + 2 * ${step}::interval - interval '1 microsecond')::text as hi from ${q}`,
    )
  ).rows[0] as { lo: string | null; hi: string | null };
  if (spec.before && range.hi !== null) {
    const last = new Date(Date.parse(`${spec.before}T00:00:00Z`) - 86400000).toISOString().slice(0, 10);
    const cap = `${last} 23:59:59.999999`;
    if (range.hi > cap) range.hi = cap;
  }
  const empty = range.lo === null;

  // --- insert: clone a seen row with a new key --------------------------------------------
  let insert: TableLoadPlan['insert'];
  const drawnKey = key.find((c) => draws(col(c.name)));
  const intKey = [...key].reverse().find((c) => INT_LIMITS[col(c.name).base] && c.name !== pk && !inFk(c.name) && !col(c.name).generated);
  const uuidKey = key.find((c) => col(c.name).base === 'uuid' && !inFk(c.name) && !col(c.name).generated);
  const newKey: Extract<TableLoadPlan['insert'], { ok: true }>['newKey'] | null = drawnKey
    ? { column: drawnKey.name, how: 'default' }
    : intKey
      ? {
          column: intKey.name,
          how: 'above-max',
          type: intKey.type,
          limit: INT_LIMITS[col(intKey.name).base].toString(),
          maxSql: `select max(${ident(intKey.name)})::text as max from ${q}`,
        }
      : uuidKey
        ? { column: uuidKey.name, how: 'uuid' }
        : null;
  // Columns a clone does not copy: they compute or draw their own value.
  const fresh = new Set(columns.filter((c) => c.generated || draws(c)).map((c) => c.name));
  if (newKey) fresh.add(newKey.column);
  const repeated = cons.filter((c) => (c.kind === 'p' || c.kind === 'u') && !c.columns.some((x) => fresh.has(x)));
  if (empty) insert = { ok: false, reason: `${t} has no rows to clone` };
  else if (!newKey) {
    insert = {
      ok: false,
      reason:
        `no key column of ${t} can take a new value for a cloned row (primary key ${key.map((c) => c.name).join(', ')}): ` +
        `none has an identity, serial or uuid default, and none is an integer or uuid outside the partition key and foreign keys`,
    };
  } else if (repeated.length) {
    const u = repeated[0];
    insert = {
      ok: false,
      reason: `a cloned row of ${t} would repeat unique index ${u.name} (${u.columns.join(', ') || 'expressions'}), which holds no column that takes a new value`,
    };
  } else {
    const target = columns.filter((c) => !c.generated && c.identity === '' && !(draws(c) && c.name !== newKey.column) && !(newKey.how === 'default' && c.name === newKey.column));
    const value = (c: ColumnRow) =>
      c.name !== newKey.column ? ident(c.name) : newKey.how === 'uuid' ? 'gen_random_uuid()' : `$${n + 1}::${c.type}`;
    insert = {
      ok: true,
      does:
        `clones a seen row of ${t} with a new ${newKey.column} ` +
        (newKey.how === 'default' ? '(drawn by its default)' : newKey.how === 'uuid' ? '(gen_random_uuid())' : '(above the max at start, plus a per-run offset)') +
        (foreignKeys.length ? `, reusing its ${foreignKeys.map((f) => f.columns.join(', ')).join('; ')} (foreign key${foreignKeys.length > 1 ? 's' : ''})` : ''),
      sql:
        `insert into ${q} (${target.map((c) => ident(c.name)).join(', ')}) ` +
        `select ${target.map(value).join(', ')} from ${q} where ${where} limit 1 returning ${returning}`,
      newKey,
    };
  }

  // --- update: one column nothing depends on ----------------------------------------------
  const why = (c: ColumnRow): string[] => {
    const r: string[] = [];
    if (primary.columns.includes(c.name)) r.push('primary key');
    if (c.name === pk) r.push('partition key');
    if (c.generated) r.push('generated');
    if (c.identity) r.push('identity');
    else if (draws(c)) r.push('drawn from a default');
    for (const x of cons) {
      if (!x.columns.includes(c.name) || x.kind === 'p') continue;
      r.push({ u: `unique index ${x.name}`, f: `foreign key ${x.name}`, r: `referenced by foreign key ${x.name} of ${x.ref_table}`, c: `check ${x.name}` }[x.kind]);
    }
    if (!r.length && !changeFor(c)) r.push(`type ${c.type} has no change the generator knows`);
    return r;
  };
  const usable = columns.filter((c) => why(c).length === 0);
  const update: TableLoadPlan['update'] = empty
    ? { ok: false, reason: `${t} has no rows to update` }
    : usable.length === 0
      ? {
          ok: false,
          reason:
            `no usable non-key column to update on ${t} (every column is part of the key, generated, or referenced by a constraint: ` +
            `${columns.map((c) => `${c.name}: ${why(c).join(', ')}`).join('; ')})`,
        }
      : {
          ok: true,
          does: `updates one of ${usable.map((c) => `${c.name} (${changeFor(c)!.change})`).join(', ')} of a seen row`,
          columns: usable.map((c) => ({
            name: c.name,
            change: changeFor(c)!.change,
            sql: `update ${q} set ${ident(c.name)} = ${changeFor(c)!.expr} where ${where}`,
          })),
        };

  // --- move: the partition key by whole intervals -----------------------------------------
  // A row stays unique after a move when each unique index holding the key also holds a column
  // that alone tells rows apart: the primary key without the partition key, or a drawn key.
  const rowId = !primary.columns.includes(pk) ? primary.columns : (drawnKey ? [drawnKey.name] : null);
  const clash = cons.find((c) => (c.kind === 'p' || c.kind === 'u') && c.columns.includes(pk) && !(rowId && rowId.every((x) => c.columns.includes(x))));
  const keyFk = cons.find((c) => (c.kind === 'f' || c.kind === 'r') && c.columns.includes(pk));
  const tied = checkOnKey.find((c) => c.columns.length > 1);
  let move: TableLoadPlan['move'];
  if (empty) move = { ok: false, reason: `${t} has no rows to move` };
  else if (keyCol.generated) move = { ok: false, reason: `partition key ${t}.${pk} is generated; it moves only with the columns it is computed from` };
  else if (keyFk) move = { ok: false, reason: `partition key ${t}.${pk} is in foreign key ${keyFk.name}; moving it could break the reference` };
  else if (tied) move = { ok: false, reason: `partition key ${t}.${pk} is tied to other columns by check ${tied.name}; a move could violate it` };
  else if (clash) {
    move = { ok: false, reason: `moving ${t}.${pk} could make two rows collide in unique index ${clash.name} (${clash.columns.join(', ')})` };
  } else if (range.lo === range.hi) {
    move = { ok: false, reason: `every row of ${t} has the same ${pk} and check ${checkOnKey[0]?.name} limits it, so no row can move within the values the table accepts` };
  } else {
    const lo = `${literal(range.lo!)}::timestamp`;
    const hi = `${literal(range.hi!)}::timestamp`;
    const plus = `${asUtc} + $${n + 1}::interval`;
    const minus = `${asUtc} - $${n + 1}::interval`;
    move = {
      ok: true,
      does: `moves ${pk} of a seen row by ±1 or 2 ${interval}s within ${range.lo}..${range.hi}${checkOnKey.length ? ` (the data's range: check ${checkOnKey[0].name})` : ''}`,
      range: { from: range.lo!, to: range.hi! },
      sql:
        `update ${q} set ${k} = ${fromUtc(`case when ${plus} between ${lo} and ${hi} then ${plus} else ${minus} end`)} ` +
        `where ${where} and (${plus} between ${lo} and ${hi} or ${minus} between ${lo} and ${hi}) returning ${returning}`,
    };
  }

  const del: TableLoadPlan['delete'] = insert.ok
    ? { ok: true, does: `deletes rows of ${t} this run inserted, never another`, sql: `delete from ${q} where ${where} returning ${returning}` }
    : { ok: false, reason: `it deletes only rows it inserted itself, and it cannot insert: ${insert.reason}` };

  return {
    schema,
    table,
    partitionKey: pk,
    interval,
    key,
    foreignKeys,
    sampleSql: `select ${returning} from ${q} order by random() limit ${SAMPLE_SIZE}`,
    insert,
    update,
    move,
    delete: del,
  };
}

/** The change an update makes to a column of this type, small and always valid for it. */
function changeFor(c: ColumnRow): { change: string; expr: string } | null {
  const x = ident(c.name);
  if (c.typtype !== 'b') return null; // domains, enums, composites: their own rules
  if (NUMERIC.has(c.base)) return { change: '+1', expr: `${x} + 1` };
  if (c.base === 'bool') return { change: 'flipped', expr: `not ${x}` };
  if (c.base === 'timestamp' || c.base === 'timestamptz') return { change: '+1s', expr: `${x} + interval '1 second'` };
  if (c.base === 'date') return { change: '+1 day', expr: `${x} + 1` };
  if (TEXT.has(c.base)) {
    // Unbounded text toggles a trailing '*'; a bounded one replaces its last character.
    const max = c.typmod > 4 ? c.typmod - 4 : null;
    return max === null
      ? { change: "'*' appended or removed", expr: `case when right(${x}, 1) = '*' then left(${x}, -1) else ${x} || '*' end` }
      : { change: "last character replaced by '*' or '#'", expr: `left(${x}, ${max - 1}) || case when right(${x}, 1) = '*' then '#' else '*' end` };
  }
  return null;
}

// ------------------------------------------------------------------------------------------
// Running the load.

export interface LoadOptions {
  /** Total ops per second over all tables and connections. */
  ratePerSec: number;
  /** Connections (and ops in flight); default 4. */
  concurrency?: number;
  /** Relative weights; default DEFAULT_LOAD_MIX. Operations a plan cannot run are skipped (see `skipped`). */
  mix?: LoadMix;
  /** Stop by itself after this long; default: run until stop(). */
  durationMs?: number;
  /** Named prepared statements, as ORMs use; default true. */
  prepared?: boolean;
  /** Segment the first ops count under, until mark(); default 'load'. */
  segment?: string;
  /** Keep the keys inserted and deleted and the moves committed (memory grows with the run). */
  record?: boolean;
}

export interface WriteStats {
  /** Statements that succeeded (one op each). */
  writes: number;
  /** Statements that failed. */
  failedWrites: number;
  /** Rows they touched (a clone of a row deleted meanwhile touches none). */
  rows: number;
  /** `kind on table: message (SQLSTATE)` of the first failure. */
  firstError: string | null;
  /** Of writes and failed writes, from a 2% log histogram (max exact). */
  latencyMs: { p50: number; p99: number; max: number };
}
export interface LoadSummary extends WriteStats {
  durationMs: number;
  opsPerSec: number;
  byKind: Record<string, WriteStats>;
  /** Per mark() label (the segment current when each op started); before the first mark, `segment` or 'load'. */
  bySegment: Record<string, WriteStats & { byKind: Record<string, WriteStats> }>;
  byTable: Record<string, WriteStats & { byKind: Record<string, WriteStats> }>;
  /** `schema.table kind` → why it did not run (only kinds with a weight in the mix). */
  skipped: Record<string, string>;
  committed?: {
    inserted: { table: string; key: string[] }[];
    deleted: { table: string; key: string[] }[];
    moved: { table: string; key: string[]; by: string }[];
  };
}

export interface TableLoad {
  /** Ops started from now on count under `label`. */
  mark(label: string): void;
  /** Holds new ops; resolves once the ops in flight are done (the table is quiet). */
  pause(): Promise<void>;
  resume(): void;
  summary(): LoadSummary;
  stop(): Promise<LoadSummary>;
  done: Promise<LoadSummary>;
}

/** After a stall, at most this much missed schedule is made up at once. */
const MAX_CATCH_UP_MS = 100;
const SEEN_CAP = 2000;
/** Rows of ours beyond this many are forgotten (never deleted), so memory stays bounded. */
const MINE_CAP = 100_000;

/** A set of keys with O(1) add, remove and random pick. */
class Keys {
  private list: string[][] = [];
  private at = new Map<string, number>();
  get size(): number {
    return this.list.length;
  }
  add(k: string[]): void {
    const id = JSON.stringify(k);
    if (this.at.has(id)) return;
    if (this.list.length >= MINE_CAP) this.take(Math.floor(Math.random() * this.list.length));
    this.at.set(id, this.list.length);
    this.list.push(k);
  }
  /** Removes the key; says whether it was there. */
  remove(k: string[]): boolean {
    const i = this.at.get(JSON.stringify(k));
    if (i === undefined) return false;
    this.take(i);
    return true;
  }
  /** Removes and returns a random key. */
  takeRandom(): string[] {
    return this.take(Math.floor(Math.random() * this.list.length));
  }
  private take(i: number): string[] {
    const k = this.list[i];
    const last = this.list.pop()!;
    this.at.delete(JSON.stringify(k));
    if (i < this.list.length) {
      this.list[i] = last;
      this.at.set(JSON.stringify(last), i);
    }
    return k;
  }
}
const LOG_STEP = Math.log(1.02);

interface Acc { writes: number; failedWrites: number; rows: number; firstError: string | null; hist: Map<number, number>; max: number }
const acc = (): Acc => ({ writes: 0, failedWrites: 0, rows: 0, firstError: null, hist: new Map(), max: 0 });
function merge(into: Acc, a: Acc): void {
  into.writes += a.writes;
  into.failedWrites += a.failedWrites;
  into.rows += a.rows;
  into.firstError ??= a.firstError;
  into.max = Math.max(into.max, a.max);
  for (const [b, c] of a.hist) into.hist.set(b, (into.hist.get(b) ?? 0) + c);
}
function stats(a: Acc): WriteStats {
  const total = a.writes + a.failedWrites;
  const at = (p: number) => {
    if (!total) return 0;
    const rank = Math.ceil(p * total);
    let seen = 0;
    for (const b of [...a.hist.keys()].sort((x, y) => x - y)) {
      seen += a.hist.get(b)!;
      if (seen >= rank) return round(Math.min(a.max, 0.01 * Math.exp(b * LOG_STEP)));
    }
    return round(a.max);
  };
  return { writes: a.writes, failedWrites: a.failedWrites, rows: a.rows, firstError: a.firstError, latencyMs: { p50: at(0.5), p99: at(0.99), max: round(a.max) } };
}
const round = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Runner {
  plan: TableLoadPlan;
  name: string;
  seen: string[][];
  /** Keys of rows this run inserted and has not deleted (at most MINE_CAP). */
  mine: Keys;
  nextKey: bigint;
  keyLimit: bigint;
}

/**
 * Runs the plans' operations at `ratePerSec` over `concurrency` connections until stop() (or
 * `durationMs`). `db` is a pool (kept open at stop) or a connection string (a pool of its own).
 * Rejects before any write when no operation in the mix can run on any plan.
 */
export async function startLoad(db: pg.Pool | string, plans: TableLoadPlan | TableLoadPlan[], opts: LoadOptions): Promise<TableLoad> {
  if (!(opts.ratePerSec > 0)) throw new Error(`load: ratePerSec must be > 0, got ${opts.ratePerSec}`);
  const concurrency = opts.concurrency ?? 4;
  const mix = { ...DEFAULT_LOAD_MIX, ...opts.mix };
  const prepared = opts.prepared ?? true;
  const list = Array.isArray(plans) ? plans : [plans];
  const own = typeof db === 'string';
  const pool = own ? new pg.Pool({ connectionString: db, max: concurrency, application_name: 'ps-tableload' }) : db;
  let poolError: string | null = null;
  // An idle connection can die (a terminated backend); the pool replaces it on the next op.
  const onPoolError = (err: Error) => void (poolError ??= err.message);
  pool.on('error', onPoolError);
  const finish = async () => {
    pool.off('error', onPoolError);
    if (own) await pool.end().catch(() => undefined);
  };

  const skipped: Record<string, string> = {};
  const choices: { runner: Runner; kind: LoadKind; weight: number }[] = [];
  const runners: Runner[] = [];
  try {
    for (const plan of list) {
      const runner: Runner = { plan, name: `${plan.schema}.${plan.table}`, seen: [], mine: new Keys(), nextKey: 0n, keyLimit: 0n };
      runners.push(runner);
      for (const kind of LOAD_KINDS) {
        if (!(mix[kind] > 0)) continue;
        const op = plan[kind];
        if (op.ok) choices.push({ runner, kind, weight: mix[kind] });
        else skipped[`${runner.name} ${kind}`] = op.reason;
      }
      if (!choices.some((c) => c.runner === runner)) continue;
      runner.seen = (await pool.query({ text: plan.sampleSql, rowMode: 'array' })).rows;
      const nk = plan.insert.ok ? plan.insert.newKey : null;
      if (nk?.how === 'above-max') {
        const max = BigInt((await pool.query(nk.maxSql)).rows[0].max ?? 0);
        runner.keyLimit = BigInt(nk.limit);
        // Blocks of a million ids; a run takes a random one of those still free below the type's limit.
        const blocks = (runner.keyLimit - max) / 1_000_000n - 1n;
        const slots = blocks > 1_000_000n ? 1_000_000n : blocks;
        runner.nextKey = max + 1n + (slots > 0n ? BigInt(Math.floor(Math.random() * Number(slots))) * 1_000_000n : 0n);
      }
    }
  } catch (err) {
    await finish();
    throw err;
  }
  if (choices.length === 0) {
    await finish();
    throw new Error(`load: no operation in the mix can run: ${Object.entries(skipped).map(([k, v]) => `${k}: ${v}`).join('; ') || 'every weight is 0'}`);
  }
  const totalWeight = choices.reduce((s, c) => s + c.weight, 0);

  // --- statistics, per (segment, table, kind) ---------------------------------------------
  const t0 = performance.now();
  let endedAt: number | null = null;
  let segment = opts.segment ?? 'load';
  const accs = new Map<string, { segment: string; table: string; kind: string; acc: Acc }>();
  const committed: NonNullable<LoadSummary['committed']> = { inserted: [], deleted: [], moved: [] };
  const note = (seg: string, table: string, kind: string, started: number, rows: number, err: unknown) => {
    const id = `${seg}\u0000${table}\u0000${kind}`;
    let e = accs.get(id);
    if (!e) accs.set(id, (e = { segment: seg, table, kind, acc: acc() }));
    const a = e.acc;
    const ms = performance.now() - started;
    a.max = Math.max(a.max, ms);
    const b = ms <= 0.01 ? 0 : Math.ceil(Math.log(ms / 0.01) / LOG_STEP);
    a.hist.set(b, (a.hist.get(b) ?? 0) + 1);
    if (err) {
      a.failedWrites++;
      const x = err as { message?: string; code?: string };
      a.firstError ??= `${kind} on ${table}: ${x?.message ?? String(err)}${x?.code ? ` (${x.code})` : ''}`;
    } else {
      a.writes++;
      a.rows += rows;
    }
  };

  const summary = (): LoadSummary => {
    const all = acc();
    const byKind = new Map<string, Acc>();
    const bySegment = new Map<string, { acc: Acc; byKind: Map<string, Acc> }>();
    const byTable = new Map<string, { acc: Acc; byKind: Map<string, Acc> }>();
    const into = <T>(m: Map<string, T>, k: string, make: () => T) => m.get(k) ?? (m.set(k, make()), m.get(k)!);
    const group = () => ({ acc: acc(), byKind: new Map<string, Acc>() });
    for (const { segment: s, table, kind, acc: a } of accs.values()) {
      merge(all, a);
      merge(into(byKind, kind, acc), a);
      for (const g of [into(bySegment, s, group), into(byTable, table, group)]) {
        merge(g.acc, a);
        merge(into(g.byKind, kind, acc), a);
      }
    }
    const flat = (m: Map<string, Acc>) => Object.fromEntries([...m].map(([k, a]) => [k, stats(a)]));
    const nested = (m: Map<string, { acc: Acc; byKind: Map<string, Acc> }>) =>
      Object.fromEntries([...m].map(([k, g]) => [k, { ...stats(g.acc), byKind: flat(g.byKind) }]));
    const elapsed = (endedAt ?? performance.now()) - t0;
    const s = stats(all);
    if (!s.firstError && poolError) s.firstError = `pool: ${poolError}`;
    return {
      ...s,
      durationMs: Math.round(elapsed),
      opsPerSec: round(elapsed > 0 ? ((all.writes + all.failedWrites) * 1000) / elapsed : 0),
      byKind: flat(byKind),
      bySegment: nested(bySegment),
      byTable: nested(byTable),
      skipped,
      ...(opts.record ? { committed } : {}),
    };
  };

  // --- one op -----------------------------------------------------------------------------
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
  const see = (r: Runner, k: string[]) => {
    if (r.seen.length < SEEN_CAP) r.seen.push(k);
    else r.seen[Math.floor(Math.random() * SEEN_CAP)] = k;
  };
  const send = (text: string, values: unknown[]) =>
    pool.query<string[]>({ text, values, rowMode: 'array', ...(prepared ? { name: `tl_${createHash('sha1').update(text).digest('hex').slice(0, 24)}` } : {}) });

  const runOne = async () => {
    let x = Math.random() * totalWeight;
    let choice = choices[choices.length - 1];
    for (const c of choices) if ((x -= c.weight) < 0) { choice = c; break; }
    const r = choice.runner;
    const p = r.plan;
    let kind = choice.kind;
    // Nothing of ours to delete yet: the op inserts instead.
    if (kind === 'delete' && r.mine.size === 0) kind = 'insert';
    const seg = segment;
    const started = performance.now();
    try {
      if (r.seen.length === 0 && kind !== 'delete') throw new Error(`no row of ${r.name} left to ${kind} (none seen at start or inserted since)`);
      if (kind === 'insert' && p.insert.ok) {
        const values: unknown[] = [...pick(r.seen)];
        if (p.insert.newKey.how === 'above-max') {
          if (r.nextKey > r.keyLimit) throw new Error(`no ${p.insert.newKey.column} left below ${r.keyLimit} for new rows`);
          values.push((r.nextKey++).toString());
        }
        const res = await send(p.insert.sql, values);
        for (const k of res.rows) {
          r.mine.add(k);
          see(r, k);
          if (opts.record) committed.inserted.push({ table: r.name, key: k });
        }
        note(seg, r.name, kind, started, res.rowCount ?? 0, null);
      } else if (kind === 'update' && p.update.ok) {
        const res = await send(pick(p.update.columns).sql, pick(r.seen));
        note(seg, r.name, kind, started, res.rowCount ?? 0, null);
      } else if (kind === 'move' && p.move.ok) {
        const before = pick(r.seen);
        const n = Math.random() < 0.5 ? 1 : 2;
        const by = `${Math.random() < 0.5 ? '-' : ''}${p.interval === 'quarter' ? `${3 * n} month` : `${n} ${p.interval}`}`;
        const res = await send(p.move.sql, [...before, by]);
        const after = res.rows[0];
        if (after && JSON.stringify(after) !== JSON.stringify(before)) {
          // The partition key is part of the primary key: the row's key changed with it.
          const i = r.seen.indexOf(before);
          if (i >= 0) r.seen[i] = after;
          if (r.mine.remove(before)) r.mine.add(after);
        }
        if (after && opts.record) committed.moved.push({ table: r.name, key: before, by });
        note(seg, r.name, kind, started, res.rowCount ?? 0, null);
      } else if (kind === 'delete' && p.delete.ok) {
        const k = r.mine.takeRandom();
        const res = await send(p.delete.sql, k);
        for (const d of res.rows) if (opts.record) committed.deleted.push({ table: r.name, key: d });
        const id = JSON.stringify(k);
        const i = r.seen.findIndex((s) => JSON.stringify(s) === id);
        if (i >= 0) r.seen.splice(i, 1);
        note(seg, r.name, kind, started, res.rowCount ?? 0, null);
      }
    } catch (err) {
      note(seg, r.name, kind, started, 0, err);
    }
  };

  // --- scheduling: `concurrency` loops share one slot clock spaced 1/rate apart -------------
  const spacing = 1000 / opts.ratePerSec;
  let nextSlot = performance.now();
  let stopping = false;
  let paused: { until: Promise<void>; release: () => void } | null = null;
  let inFlight = 0;
  let idle: (() => void)[] = [];

  const loop = async () => {
    while (!stopping) {
      if (paused) {
        await paused.until;
        continue;
      }
      const now = performance.now();
      nextSlot = Math.max(nextSlot, now - MAX_CATCH_UP_MS);
      const slot = nextSlot;
      nextSlot += spacing;
      if (slot > now) await sleep(slot - now);
      if (stopping || paused) continue;
      inFlight++;
      await runOne();
      if (--inFlight === 0) {
        for (const f of idle) f();
        idle = [];
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);

  let finished: Promise<LoadSummary> | null = null;
  let resolveDone: (s: LoadSummary) => void = () => undefined;
  const done = new Promise<LoadSummary>((resolve) => (resolveDone = resolve));
  const timer = opts.durationMs !== undefined ? setTimeout(() => void stop(), opts.durationMs) : null;
  const stop = (): Promise<LoadSummary> => {
    finished ??= (async () => {
      stopping = true;
      paused?.release();
      if (timer) clearTimeout(timer);
      await Promise.all(loops);
      endedAt = performance.now();
      await finish();
      const s = summary();
      resolveDone(s);
      return s;
    })();
    return finished;
  };

  return {
    mark(label) {
      segment = label;
    },
    pause() {
      if (!paused && !stopping) {
        let release: () => void = () => undefined;
        const until = new Promise<void>((resolve) => (release = resolve));
        paused = { until, release };
      }
      return inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => idle.push(resolve));
    },
    resume() {
      if (!paused) return;
      const p = paused;
      paused = null;
      nextSlot = performance.now(); // no burst for the paused time
      p.release();
    },
    summary,
    stop,
    done,
  };
}
