// The load generator's plan (src/tableload.ts): planLoad reads the catalog of a table once and
// says which operations it can run, with their SQL (src/loadsql.ts), or why not. The plan is
// plain JSON, so a workflow's history can record it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import {
  columnChange,
  loadDeleteSql,
  loadInsertSql,
  loadMaxSql,
  loadMoveSql,
  loadRangeSql,
  loadSampleSql,
  loadUpdateSql,
  type LoadKeyType,
  type LoadTable,
} from './loadsql';

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

export interface LoadSpec {
  schema: string;
  table: string;
  partitionKey: string;
  interval: LoadInterval;
  /** Keys the load writes stay before this day (YYYY-MM-DD, UTC): the attach strategy's cutoff, which its CHECK enforces until cutover. */
  before?: string;
}

type NewKey = Extract<TableLoadPlan['insert'], { ok: true }>['newKey'];

const SQL_DIR = join(__dirname, '..', 'sql', 'tableload');
const sqlText = (name: string) => readFileSync(join(SQL_DIR, `${name}.sql`), 'utf8');

const INT_LIMITS: Record<string, bigint> = { int2: 32767n, int4: 2147483647n, int8: 9223372036854775807n };
const KEY_TYPES: Record<string, LoadKeyType> = { date: 'date', timestamp: 'timestamp', timestamptz: 'timestamptz' };
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

/** What the catalog says of the table: its columns, its constraints, the partition key's column and type, the primary key. */
interface TableCatalog {
  columns: ColumnRow[];
  cons: ConstraintRow[];
  keyCol: ColumnRow;
  keyType: LoadKeyType;
  primary: ConstraintRow;
}

/** The table's catalog; throws when the table, its partition key or its primary key is not usable. */
async function readCatalog(client: pg.ClientBase | pg.Pool, spec: LoadSpec): Promise<TableCatalog> {
  const { schema, table, partitionKey: pk } = spec;
  const t = `${schema}.${table}`;
  const rel = (await client.query(sqlText('table'), [schema, table])).rows[0];
  if (!rel) throw new Error(`load: table ${t} does not exist`);
  if (rel.relkind !== 'r' && rel.relkind !== 'p') throw new Error(`load: ${t} is not a table (relkind ${rel.relkind})`);
  const columns: ColumnRow[] = (await client.query(sqlText('columns'), [rel.oid])).rows;
  const cons: ConstraintRow[] = (await client.query(sqlText('constraints'), [rel.oid])).rows;
  const keyCol = columns.find((c) => c.name === pk);
  const keyType = keyCol && KEY_TYPES[keyCol.base];
  if (!keyCol || !keyType) {
    throw new Error(`load: partition key ${t}.${pk} ${keyCol ? `is of type ${keyCol.type}; it must be date, timestamp or timestamptz` : 'does not exist'}`);
  }
  const primary = cons.find((c) => c.kind === 'p');
  if (!primary || primary.has_expressions) throw new Error(`load: ${t} has no primary key on plain columns; the generator finds its rows by it`);
  return { columns, cons, keyCol, keyType, primary };
}

/**
 * Periods the data spans, one more on each side (a partition exists for each after prepare, or
 * pmin/pmax take them); a check constraint on the key keeps it within the data's own range.
 * Capped before `spec.before` (the attach cutoff). Both null for an empty table.
 */
async function readRange(
  client: pg.ClientBase | pg.Pool,
  spec: LoadSpec,
  target: LoadTable,
  cat: TableCatalog,
): Promise<{ lo: string | null; hi: string | null }> {
  const checkOnKey = cat.cons.some((c) => c.kind === 'c' && c.columns.includes(spec.partitionKey));
  const range = (await client.query(loadRangeSql(target, spec.partitionKey, cat.keyType, spec.interval, checkOnKey))).rows[0] as {
    lo: string | null;
    hi: string | null;
  };
  if (spec.before && range.hi !== null) {
    const last = new Date(Date.parse(`${spec.before}T00:00:00Z`) - 86400000).toISOString().slice(0, 10);
    const cap = `${last} 23:59:59.999999`;
    if (range.hi > cap) range.hi = cap;
  }
  return range;
}

/** Each operation's plan for one table, from its catalog and the data's range. */
class LoadPlanner {
  private readonly t: string;
  private readonly pk: string;
  private readonly empty: boolean;
  private readonly foreignKeys: TableLoadPlan['foreignKeys'];
  private readonly checkOnKey: ConstraintRow[];
  private readonly drawnKey: { name: string; type: string } | undefined;

  constructor(
    private readonly spec: LoadSpec,
    private readonly target: LoadTable,
    private readonly cat: TableCatalog,
    private readonly range: { lo: string | null; hi: string | null },
  ) {
    this.t = `${spec.schema}.${spec.table}`;
    this.pk = spec.partitionKey;
    this.empty = range.lo === null;
    this.foreignKeys = cat.cons
      .filter((c) => c.kind === 'f')
      .map((c) => ({ name: c.name, columns: c.columns, references: c.ref_table!, referencedColumns: c.ref_columns ?? [] }));
    this.checkOnKey = cat.cons.filter((c) => c.kind === 'c' && c.columns.includes(this.pk));
    this.drawnKey = target.key.find((c) => this.draws(this.col(c.name)));
  }

  plan(): TableLoadPlan {
    const { schema, table, interval } = this.spec;
    const insert = this.insert();
    return {
      schema,
      table,
      partitionKey: this.pk,
      interval,
      key: this.target.key,
      foreignKeys: this.foreignKeys,
      sampleSql: loadSampleSql(this.target, SAMPLE_SIZE),
      insert,
      update: this.update(),
      move: this.move(),
      delete: this.del(insert),
    };
  }

  private col(name: string): ColumnRow {
    return this.cat.columns.find((c) => c.name === name)!;
  }
  private inFk(name: string): ConstraintRow | undefined {
    return this.cat.cons.find((c) => c.kind === 'f' && c.columns.includes(name));
  }
  private draws(c: ColumnRow): boolean {
    return c.identity !== '' || (c.default !== null && DRAWS.test(c.default));
  }

  /** The key column a cloned row gets a new value in: drawn by its default, above the max (an integer), or a new uuid. */
  private newKey(): NewKey | null {
    const key = this.target.key;
    const intKey = [...key].reverse().find((c) => INT_LIMITS[this.col(c.name).base] && c.name !== this.pk && !this.inFk(c.name) && !this.col(c.name).generated);
    const uuidKey = key.find((c) => this.col(c.name).base === 'uuid' && !this.inFk(c.name) && !this.col(c.name).generated);
    if (this.drawnKey) return { column: this.drawnKey.name, how: 'default' };
    if (intKey) {
      return {
        column: intKey.name,
        how: 'above-max',
        type: intKey.type,
        limit: INT_LIMITS[this.col(intKey.name).base].toString(),
        maxSql: loadMaxSql(this.target, intKey.name),
      };
    }
    return uuidKey ? { column: uuidKey.name, how: 'uuid' } : null;
  }

  // --- insert: clone a seen row with a new key --------------------------------------------
  private insert(): TableLoadPlan['insert'] {
    const { t, cat } = this;
    const newKey = this.newKey();
    // Columns a clone does not copy: they compute or draw their own value.
    const fresh = new Set(cat.columns.filter((c) => c.generated || this.draws(c)).map((c) => c.name));
    if (newKey) fresh.add(newKey.column);
    const repeated = cat.cons.filter((c) => (c.kind === 'p' || c.kind === 'u') && !c.columns.some((x) => fresh.has(x)));
    if (this.empty) return { ok: false, reason: `${t} has no rows to clone` };
    if (!newKey) {
      return {
        ok: false,
        reason:
          `no key column of ${t} can take a new value for a cloned row (primary key ${this.target.key.map((c) => c.name).join(', ')}): ` +
          `none has an identity, serial or uuid default, and none is an integer or uuid outside the partition key and foreign keys`,
      };
    }
    if (repeated.length) {
      const u = repeated[0];
      return {
        ok: false,
        reason: `a cloned row of ${t} would repeat unique index ${u.name} (${u.columns.join(', ') || 'expressions'}), which holds no column that takes a new value`,
      };
    }
    const target = cat.columns.filter(
      (c) => !c.generated && c.identity === '' && !(this.draws(c) && c.name !== newKey.column) && !(newKey.how === 'default' && c.name === newKey.column),
    );
    const fks = this.foreignKeys;
    return {
      ok: true,
      does:
        `clones a seen row of ${t} with a new ${newKey.column} ` +
        (newKey.how === 'default'
          ? '(drawn by its default)'
          : newKey.how === 'uuid'
            ? '(gen_random_uuid())'
            : '(above the max at start, plus a per-run offset)') +
        (fks.length ? `, reusing its ${fks.map((f) => f.columns.join(', ')).join('; ')} (foreign key${fks.length > 1 ? 's' : ''})` : ''),
      sql: loadInsertSql(this.target, target, newKey),
      newKey,
    };
  }

  // --- update: one column nothing depends on ----------------------------------------------
  /** Why an update may not change this column (none: it may). */
  private why(c: ColumnRow): string[] {
    const r: string[] = [];
    if (this.cat.primary.columns.includes(c.name)) r.push('primary key');
    if (c.name === this.pk) r.push('partition key');
    if (c.generated) r.push('generated');
    if (c.identity) r.push('identity');
    else if (this.draws(c)) r.push('drawn from a default');
    for (const x of this.cat.cons) {
      if (!x.columns.includes(c.name) || x.kind === 'p') continue;
      r.push(
        { u: `unique index ${x.name}`, f: `foreign key ${x.name}`, r: `referenced by foreign key ${x.name} of ${x.ref_table}`, c: `check ${x.name}` }[x.kind],
      );
    }
    if (!r.length && !columnChange(c)) r.push(`type ${c.type} has no change the generator knows`);
    return r;
  }

  private update(): TableLoadPlan['update'] {
    const { t, cat } = this;
    const usable = cat.columns.filter((c) => this.why(c).length === 0);
    if (this.empty) return { ok: false, reason: `${t} has no rows to update` };
    if (usable.length === 0) {
      return {
        ok: false,
        reason:
          `no usable non-key column to update on ${t} (every column is part of the key, generated, or referenced by a constraint: ` +
          `${cat.columns.map((c) => `${c.name}: ${this.why(c).join(', ')}`).join('; ')})`,
      };
    }
    return {
      ok: true,
      does: `updates one of ${usable.map((c) => `${c.name} (${columnChange(c)!.change})`).join(', ')} of a seen row`,
      columns: usable.map((c) => ({ name: c.name, change: columnChange(c)!.change, sql: loadUpdateSql(this.target, c.name, columnChange(c)!.expr) })),
    };
  }

  // --- move: the partition key by whole intervals -----------------------------------------
  /** Why no row can move its partition key, or null when a move can run. */
  private moveRefusal(): string | null {
    const { t, pk, cat, range } = this;
    // A row stays unique after a move when each unique index holding the key also holds a column
    // that alone tells rows apart: the primary key without the partition key, or a drawn key.
    const rowId = !cat.primary.columns.includes(pk) ? cat.primary.columns : this.drawnKey ? [this.drawnKey.name] : null;
    const clash = cat.cons.find((c) => (c.kind === 'p' || c.kind === 'u') && c.columns.includes(pk) && !(rowId && rowId.every((x) => c.columns.includes(x))));
    const keyFk = cat.cons.find((c) => (c.kind === 'f' || c.kind === 'r') && c.columns.includes(pk));
    const tied = this.checkOnKey.find((c) => c.columns.length > 1);
    if (this.empty) return `${t} has no rows to move`;
    if (cat.keyCol.generated) return `partition key ${t}.${pk} is generated; it moves only with the columns it is computed from`;
    if (keyFk) return `partition key ${t}.${pk} is in foreign key ${keyFk.name}; moving it could break the reference`;
    if (tied) return `partition key ${t}.${pk} is tied to other columns by check ${tied.name}; a move could violate it`;
    if (clash) return `moving ${t}.${pk} could make two rows collide in unique index ${clash.name} (${clash.columns.join(', ')})`;
    if (range.lo === range.hi)
      return `every row of ${t} has the same ${pk} and check ${this.checkOnKey[0]?.name} limits it, so no row can move within the values the table accepts`;
    return null;
  }

  private move(): TableLoadPlan['move'] {
    const reason = this.moveRefusal();
    if (reason !== null) return { ok: false, reason };
    const { pk, range, checkOnKey } = this;
    const within = { from: range.lo!, to: range.hi! };
    return {
      ok: true,
      does: `moves ${pk} of a seen row by ±1 or 2 ${this.spec.interval}s within ${range.lo}..${range.hi}${checkOnKey.length ? ` (the data's range: check ${checkOnKey[0].name})` : ''}`,
      range: within,
      sql: loadMoveSql(this.target, pk, this.cat.keyType, within),
    };
  }

  private del(insert: TableLoadPlan['insert']): TableLoadPlan['delete'] {
    return insert.ok
      ? { ok: true, does: `deletes rows of ${this.t} this run inserted, never another`, sql: loadDeleteSql(this.target) }
      : { ok: false, reason: `it deletes only rows it inserted itself, and it cannot insert: ${insert.reason}` };
  }
}

/**
 * Reads the catalog of `schema.table` and says what load it can generate. Throws only when the
 * table or its partition key is not there (a clear message); every operation it cannot run is
 * returned with its reason instead.
 */
export async function planLoad(client: pg.ClientBase | pg.Pool, spec: LoadSpec): Promise<TableLoadPlan> {
  const cat = await readCatalog(client, spec);
  const key = cat.primary.columns.map((name) => ({ name, type: cat.columns.find((c) => c.name === name)!.type }));
  const target: LoadTable = { schema: spec.schema, table: spec.table, key };
  const range = await readRange(client, spec, target, cat);
  return new LoadPlanner(spec, target, cat, range).plan();
}
