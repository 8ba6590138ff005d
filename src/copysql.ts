// SQL of the fast copy, the copy re-check and the deferred index build. Pure, like sqlgen.ts:
// identifiers through ident()/qname(), values as `$n` parameters.
//
// Why these shapes (measured on 2 cores, PostgreSQL 15, 1M rows; see bench/):
// - batches are ranges of the integer key (`id >= $1 AND id < $2`), not keyset LIMIT scans:
//   no sort, no LIMIT, and a prepared statement plans once;
// - rows already written by the dual-write trigger are skipped with an anti-join restricted to
//   the batch's range; `INSERT ... ON CONFLICT DO NOTHING` into a partitioned table costs 2.5x
//   a plain insert (speculative insertion per row), so it is only the retry after a race;
// - secondary indexes are built after the copy, partition by partition.
import type { IndexPlan, IndexShape, TablePlan } from './types';
import { CHANGED_KEYS, columnType, rowHashExpr } from './sqlgen';
import { ident, list, literal, qname } from './sql';

/**
 * One range batch: rows of the legacy table with `split` in [$1, $2] (inclusive, so a batch
 * ending at the type's maximum needs no bound past it), inserted into the
 * partitioned table unless the trigger already wrote them; its row count is what it inserted.
 * One plain `INSERT … SELECT` (a CTE that also counted the rows read cost 10% more: 1M rows in
 * 100 batches, 2.6–2.8 s against 2.4–2.5 s). `lock` takes FOR SHARE on the legacy rows it
 * copies, so a concurrent update or delete waits for the batch (mode "lock"; a row the trigger
 * wrote already is the trigger's to keep current); without it the batch can race a writer, and
 * the re-check pass repairs what it got wrong (mode "recheck"). `onConflict` is the retry after
 * a unique violation (a trigger insert committed mid-batch).
 */
export function rangeBatchSql(tp: TablePlan, opts: { lock: boolean; onConflict?: boolean }): string {
  const split = tp.splitColumn;
  if (!split) throw new Error(`${tp.table} has no integer key to split; use the keyset batch`);
  const type = columnType(tp, split);
  const part = qname(tp.schema, tp.names.partitioned);
  const same = tp.partitionedKey.map((k) => `p.${ident(k)} = b.${ident(k)}`).join(' AND ');
  return [
    `INSERT INTO ${part} (${list(tp.insertColumns)})`,
    `  SELECT ${list(tp.insertColumns, 'b.')} FROM ${qname(tp.schema, tp.table)} b WHERE b.${ident(split)} >= $1::${type} AND b.${ident(split)} <= $2::${type}`,
    `  AND NOT EXISTS (SELECT 1 FROM ${part} p WHERE p.${ident(split)} >= $1::${type} AND p.${ident(split)} <= $2::${type} AND ${same})`,
    opts.lock ? `  FOR SHARE OF b` : null,
    opts.onConflict ? `  ON CONFLICT DO NOTHING` : null,
  ]
    .filter((l) => l !== null)
    .join('\n');
}

/** Where a range copy starts and ends: the split column's bounds now (rows added later come by trigger). */
export function splitBoundsSql(tp: TablePlan): string {
  const s = ident(tp.splitColumn!);
  return `SELECT min(${s})::text AS min, max(${s})::text AS max FROM ${qname(tp.schema, tp.table)}`;
}

/** The first key at or after $1 (skips gaps in sparse keys). */
export function nextKeySql(tp: TablePlan): string {
  const s = ident(tp.splitColumn!);
  return `SELECT min(${s})::text AS next FROM ${qname(tp.schema, tp.table)} WHERE ${s} >= $1::${columnType(tp, tp.splitColumn!)}`;
}

/** Chunk of a row for the re-check: integer key / chunkRows when there is one, else its period. */
function chunkExpr(tp: TablePlan, chunkRows: number): string {
  if (!Number.isSafeInteger(chunkRows) || chunkRows < 1) throw new Error(`chunkRows must be a positive integer, got ${chunkRows}`);
  // Floor division (negative keys too), so chunk c is exactly the keys [c * chunkRows, (c + 1) * chunkRows).
  return tp.splitColumn
    ? `(${ident(tp.splitColumn)} / ${chunkRows} - (${ident(tp.splitColumn)} % ${chunkRows} < 0)::int)`
    : `to_char(date_trunc(${literal(tp.interval)}, ${ident(tp.partitionKey)}), 'YYYY-MM-DD')`;
}

const INTEGER_RANGE: Record<string, [bigint, bigint]> = {
  smallint: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};

/** The integer key's range [lo, hi] of chunk `chunk`, inside what the key's type can hold. */
export function chunkBounds(tp: TablePlan, chunk: string, chunkRows: number): [string, string] {
  const [min, max] = INTEGER_RANGE[columnType(tp, tp.splitColumn!)] ?? INTEGER_RANGE.bigint;
  const lo = BigInt(chunk) * BigInt(chunkRows);
  const hi = lo + BigInt(chunkRows) - 1n;
  return [String(lo < min ? min : lo), String(hi > max ? max : hi)];
}

/** Makes this transaction read the snapshot another exported (pg_export_snapshot): both sides of the re-check see one state. */
export function setSnapshotSql(snapshot: string): string {
  return `SET TRANSACTION SNAPSHOT ${literal(snapshot)}`;
}

/**
 * The re-check compares keys (the partitioned table's primary key), not whole rows: a lock-free
 * batch can only get a row's existence or its partition key wrong. A writer's change of a row's
 * other columns cannot be lost: if the writer's trigger wrote the row first, the batch's insert
 * of the older version fails with a unique violation (or waits for the writer, then fails) and is
 * retried; if the batch wrote first, the trigger's upsert updates the batch's row. What it can
 * lose is a DELETE (nothing to delete yet, then the batch inserts the row) or a key change (the
 * batch inserts the old key beside the new one). Verification then compares whole rows.
 */
function keyHash(tp: TablePlan): string {
  return `hash_record_extended(ROW(${list(tp.partitionedKey)}), 0)`;
}

/** Per chunk: rows and the sum of key hashes of `table` (the re-check compares both sides). */
export function chunkHashSql(tp: TablePlan, table: string, chunkRows: number): string {
  return (
    `SELECT ${chunkExpr(tp, chunkRows)} AS chunk, count(*)::bigint AS rows, coalesce(sum(${keyHash(tp)}), 0)::text AS hash ` +
    `FROM ${qname(tp.schema, table)} GROUP BY 1`
  );
}

/**
 * Keys (legacy primary key, as a json array of text) present on one side only within one chunk, at
 * most $3. Params: with an integer key its range [$1, $2] (chunkBounds; an index range scan), else the
 * chunk's period as text in $1 and $2 unused (NULL).
 */
export function chunkDiffSql(tp: TablePlan, chunkRows: number): string {
  const keys = tp.partitionedKey;
  const where = tp.splitColumn
    ? (() => {
        const type = columnType(tp, tp.splitColumn!);
        return `${ident(tp.splitColumn!)} >= $1::${type} AND ${ident(tp.splitColumn!)} <= $2::${type}`;
      })()
    : `${chunkExpr(tp, chunkRows)} = $1::text AND $2::text IS NULL`;
  const side = (table: string) => `SELECT ${list(keys)}, 1 AS h FROM ${qname(tp.schema, table)} WHERE ${where}`;
  const id = `json_build_array(${tp.primaryKey.map((k) => `coalesce(l.${ident(k)}, p.${ident(k)})::text`).join(', ')})`;
  return (
    `SELECT DISTINCT ${id}::text AS key FROM (${side(tp.table)}) l FULL JOIN (${side(tp.names.partitioned)}) p ` +
    `USING (${list(keys)}) WHERE l.h IS DISTINCT FROM p.h LIMIT $3::int`
  );
}

/**
 * The next keys the dual-write trigger logged for the table (`$1`: its qualified name as text)
 * after log position $2, at most $3: `pos` (the position, as text) and the key as a json array.
 */
export function changedKeysSql(): string {
  // Ordered by the number, not its text (an output column named seq would sort "10" before "9").
  return `SELECT seq::text AS pos, key FROM ${CHANGED_KEYS} WHERE table_oid = $1::text::regclass AND seq > $2::bigint ORDER BY seq LIMIT $3::int`;
}

/** Forgets the keys logged for the relations named in `$1` (qualified names; missing ones are skipped). */
export function forgetChangedKeysSql(): string {
  return `DELETE FROM ${CHANGED_KEYS} WHERE table_oid IN (SELECT to_regclass(n) FROM unnest($1::text[]) AS n)`;
}

/**
 * Compares, in one statement (one snapshot), the rows of both tables with the given keys ($1: json
 * array of json arrays of the partitioned table's key, as the trigger logs them): each legacy row
 * of a logged id (by its primary key); each partitioned row at a logged key or at the key its
 * legacy row has now (one partition each). Every partitioned row of a logged id is at one of the
 * id's logged keys (the copy put it at the key the legacy row had, and every change since logged
 * the key it left) or at the legacy row's own key; an id's keys can sit on several pages of the log
 * (an update's old key at the end of one page, its new one on the next), so the legacy row's key
 * is looked up on every page: a page then never compares a row against nothing, and a row left
 * at a key of another page is found on that page. Whole rows by hash, so a stale row, a missing
 * one and one left behind by a key move all differ. One lookup per key (LATERAL), never a scan of
 * either table. Returns the differing ids (json arrays of the table's key, for the repair) and the
 * logged keys of those ids (to compare them again after it), and per side the rows read and the
 * sum of their hashes.
 */
export function keysCompareSql(tp: TablePlan): string {
  const pk = tp.primaryKey;
  const key = tp.partitionedKey;
  const keys = `SELECT DISTINCT ${key.map((k, i) => `(x->>${i})::${columnType(tp, k)} AS ${ident(k)}`).join(', ')} FROM json_array_elements($1::json) x`;
  const match = (cols: string[], from: string) => cols.map((k) => `t.${ident(k)} = ${from}.${ident(k)}`).join(' AND ');
  const side = (table: string, from: string, cols: string[], out: string[]) =>
    `SELECT r.* FROM ${from} CROSS JOIN LATERAL (SELECT ${list(out)}, ${rowHashExpr(tp)} AS h FROM ${qname(tp.schema, table)} t WHERE ${match(cols, from)}) r`;
  const on = [...pk.map((k) => `l.${ident(k)} = p.${ident(k)}`), 'l.h = p.h'].join(' AND ');
  return [
    `WITH k AS MATERIALIZED (${keys}),`,
    `ids AS MATERIALIZED (SELECT DISTINCT ${list(pk)} FROM k),`,
    `l AS MATERIALIZED (${side(tp.table, 'ids', pk, key)}),`,
    `at AS MATERIALIZED (SELECT ${list(key)} FROM k UNION SELECT ${list(key)} FROM l),`,
    `p AS MATERIALIZED (${side(tp.names.partitioned, 'at', key, pk)}),`,
    `d AS MATERIALIZED (SELECT DISTINCT ${pk.map((k) => `coalesce(l.${ident(k)}, p.${ident(k)}) AS ${ident(k)}`).join(', ')} FROM l FULL JOIN p ON ${on} WHERE l.h IS NULL OR p.h IS NULL)`,
    `SELECT (SELECT count(*) FROM l)::int AS legacy_rows, (SELECT coalesce(sum(h), 0) FROM l)::text AS legacy_hash,`,
    `  (SELECT count(*) FROM p)::int AS partitioned_rows, (SELECT coalesce(sum(h), 0) FROM p)::text AS partitioned_hash,`,
    `  (SELECT coalesce(json_agg(json_build_array(${pk.map((k) => `${ident(k)}::text`).join(', ')})::text), '[]') FROM d) AS differ,`,
    `  (SELECT coalesce(json_agg(json_build_array(${list(key, 'k.')})::text), '[]') FROM k WHERE (${list(pk, 'k.')}) IN (SELECT ${list(pk)} FROM d)) AS differ_keys`,
  ].join('\n');
}

/**
 * Repair of the rows with the given primary keys ($1: json array of arrays of text), in one
 * transaction: lock the legacy rows (a writer of them waits until we commit, then its trigger
 * applies on top), then make the partitioned rows equal to them.
 */
export function repairSql(tp: TablePlan): string[] {
  const keys = `SELECT ${tp.primaryKey.map((k, i) => `(x->>${i})::${columnType(tp, k)}`).join(', ')} FROM json_array_elements($1::json) x`;
  const pk = `(${list(tp.primaryKey)})`;
  const cols = list(tp.insertColumns);
  return [
    `SELECT 1 FROM ${qname(tp.schema, tp.table)} WHERE ${pk} IN (${keys}) FOR SHARE`,
    `DELETE FROM ${qname(tp.schema, tp.names.partitioned)} WHERE ${pk} IN (${keys})`,
    `INSERT INTO ${qname(tp.schema, tp.names.partitioned)} (${cols}) SELECT ${cols} FROM ${qname(tp.schema, tp.table)} WHERE ${pk} IN (${keys})`,
  ];
}

/**
 * A plain index's shape: recorded as data, or, in plans recorded before that, read once from
 * its statement. Null for the primary key and constraints (built with the table).
 */
export function indexShape(i: IndexPlan): IndexShape | null {
  if (i.isPrimary) return null;
  if (i.index) return i.index;
  const m = /^CREATE (UNIQUE )?INDEX IF NOT EXISTS .+? ON .+? (USING .*)$/s.exec(i.createSql);
  return m ? { unique: !!m[1], using: m[2] } : null;
}

/** Whether an index is built after the copy (plain CREATE INDEX) or with the table (constraints). */
export function deferredIndex(i: IndexPlan): boolean {
  return indexShape(i) !== null;
}

/** `CREATE [UNIQUE] INDEX [CONCURRENTLY] IF NOT EXISTS <name> ON [ONLY] <table> USING ...`; `on` is quoted already. */
export function createIndexSql(shape: IndexShape, opts: { name: string; on: string; only?: boolean; concurrently?: boolean }): string {
  return `CREATE ${shape.unique ? 'UNIQUE ' : ''}INDEX${opts.concurrently ? ' CONCURRENTLY' : ''} IF NOT EXISTS ${ident(opts.name)} ON ${opts.only ? 'ONLY ' : ''}${opts.on} ${shape.using}`;
}

/** A plan's plain index on another table under another name. */
export function indexOn(i: IndexPlan, opts: { name: string; on: string; only?: boolean; concurrently?: boolean }): string {
  const shape = indexShape(i);
  if (!shape) throw new Error(`not a plain index: ${i.name}`);
  return createIndexSql(shape, opts);
}

/** Name of a partition's index: `<partition>_<n>_ps` cut to 63 bytes (unique per partition and index). */
export function partitionIndexName(partition: string, n: number): string {
  const suffix = `_i${n}`;
  return `${partition.slice(0, 63 - suffix.length)}${suffix}`;
}
