// The load generator's SQL (src/loadplan.ts): pure rendering from what the catalog said about a
// table. Each statement names the table, so after cutover it reaches the partitioned table; the
// row's key is `$1..$n` (cast to each key column's type). Quoting through the driver's escaping,
// as src/sql.ts does; like the rest of the generator it imports no other module of ours.
import pg from 'pg';

const { escapeIdentifier: ident, escapeLiteral: literal } = pg;

export type LoadKeyType = 'date' | 'timestamp' | 'timestamptz';

/** The table and its primary key columns (with their type) in key order. */
export interface LoadTable {
  schema: string;
  table: string;
  key: { name: string; type: string }[];
}

/** What a column's type allows an update to do (see columnChange). */
export interface ChangeColumn {
  name: string;
  base: string;
  typtype: string;
  typmod: number;
}

const NUMERIC = new Set(['int2', 'int4', 'int8', 'numeric', 'float4', 'float8']);
const TEXT = new Set(['text', 'varchar', 'bpchar']);

const qtable = (t: LoadTable) => `${ident(t.schema)}.${ident(t.table)}`;
/** The row by its key: `"a" = $1::type and ...`. */
const keyWhere = (t: LoadTable) => t.key.map((c, i) => `${ident(c.name)} = $${i + 1}::${c.type}`).join(' and ');
/** The key as text, the generator's handle on a row. */
const keyText = (t: LoadTable) => t.key.map((c) => `${ident(c.name)}::text`).join(', ');

/** `count` random rows' keys (as text): the rows a run starts from. */
export function loadSampleSql(t: LoadTable, count: number): string {
  return `select ${keyText(t)} from ${qtable(t)} order by random() limit ${count}`;
}

/** The column's max (as text): new integer keys are drawn above it. */
export function loadMaxSql(t: LoadTable, column: string): string {
  return `select max(${ident(column)})::text as max from ${qtable(t)}`;
}

/** The partition key as a UTC timestamp, and the inverse: a UTC timestamp expression back to the key's type. */
export function keyAsUtc(column: string, keyType: LoadKeyType): { asUtc: string; fromUtc: (x: string) => string } {
  const k = ident(column);
  if (keyType === 'timestamptz') return { asUtc: `(${k} at time zone 'UTC')`, fromUtc: (x) => `((${x}) at time zone 'UTC')` };
  if (keyType === 'date') return { asUtc: `${k}::timestamp`, fromUtc: (x) => `(${x})::date` };
  return { asUtc: k, fromUtc: (x) => `(${x})` };
}

const intervalStep = (interval: string) => literal(interval === 'quarter' ? '3 months' : `1 ${interval}`);

/**
 * The range a move keeps the key in (`lo`, `hi` as UTC timestamps): the periods the data spans
 * and one more on each side, or (`withinData`: a check constraint on the key) the data's own range.
 */
export function loadRangeSql(t: LoadTable, partitionKey: string, keyType: LoadKeyType, interval: string, withinData: boolean): string {
  const { asUtc } = keyAsUtc(partitionKey, keyType);
  const step = intervalStep(interval);
  return withinData
    ? `select min(${asUtc})::text as lo, max(${asUtc})::text as hi from ${qtable(t)}`
    : `select (date_trunc(${literal(interval)}, min(${asUtc})) - ${step}::interval)::text as lo, ` +
        `(date_trunc(${literal(interval)}, max(${asUtc})) + 2 * ${step}::interval - interval '1 microsecond')::text as hi from ${qtable(t)}`;
}

/**
 * A clone of the row with key $1..$n into `columns`, all copied but the new key's: drawn by its
 * default (not in `columns`), gen_random_uuid() ('uuid'), or $n+1 ('above-max').
 */
export function loadInsertSql(
  t: LoadTable,
  columns: { name: string; type: string }[],
  newKey: { column: string; how: 'default' | 'uuid' | 'above-max' },
): string {
  const n = t.key.length;
  const value = (c: { name: string; type: string }) =>
    c.name !== newKey.column ? ident(c.name) : newKey.how === 'uuid' ? 'gen_random_uuid()' : `$${n + 1}::${c.type}`;
  return (
    `insert into ${qtable(t)} (${columns.map((c) => ident(c.name)).join(', ')}) ` +
    `select ${columns.map(value).join(', ')} from ${qtable(t)} where ${keyWhere(t)} limit 1 returning ${keyText(t)}`
  );
}

/** The change an update makes to a column of this type, small and always valid for it. */
export function columnChange(c: ChangeColumn): { change: string; expr: string } | null {
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

/** One column of the row with key $1..$n set to `expr` (columnChange's). */
export function loadUpdateSql(t: LoadTable, column: string, expr: string): string {
  return `update ${qtable(t)} set ${ident(column)} = ${expr} where ${keyWhere(t)}`;
}

/**
 * The partition key of the row with key $1..$n moved by the interval $n+1, or back by it when
 * forward leaves [from, to]; no row when neither stays inside. Returns the key after the move.
 */
export function loadMoveSql(t: LoadTable, partitionKey: string, keyType: LoadKeyType, range: { from: string; to: string }): string {
  const n = t.key.length;
  const { asUtc, fromUtc } = keyAsUtc(partitionKey, keyType);
  const lo = `${literal(range.from)}::timestamp`;
  const hi = `${literal(range.to)}::timestamp`;
  const plus = `${asUtc} + $${n + 1}::interval`;
  const minus = `${asUtc} - $${n + 1}::interval`;
  return (
    `update ${qtable(t)} set ${ident(partitionKey)} = ${fromUtc(`case when ${plus} between ${lo} and ${hi} then ${plus} else ${minus} end`)} ` +
    `where ${keyWhere(t)} and (${plus} between ${lo} and ${hi} or ${minus} between ${lo} and ${hi}) returning ${keyText(t)}`
  );
}

/** The row with key $1..$n deleted, its key returned. */
export function loadDeleteSql(t: LoadTable): string {
  return `delete from ${qtable(t)} where ${keyWhere(t)} returning ${keyText(t)}`;
}
