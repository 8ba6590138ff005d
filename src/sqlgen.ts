// SQL rendering: small pure functions from a TablePlan to statements. Every identifier goes
// through the driver's escapeIdentifier and every literal through escapeLiteral; values that
// change per call are `$n` parameters. Tests pin the output as exact strings.
import { ident, list, literal, qname } from './sql';
import type { TablePlan, KeyType } from './types';
import { MAXVALUE, MINVALUE, partitionName, type PartitionRange } from './partitions';
import { carryCutoverSql, carryRollbackSql } from './carrysql';

export { ident, list, literal, qname };

/**
 * Bound literal for a partition range, typed like the key (timestamptz bounds are UTC midnights);
 * the open ends `MINVALUE` / `MAXVALUE` stay keywords (valid in FOR VALUES only).
 */
export function boundLiteral(day: string, keyType: KeyType): string {
  if (day === MINVALUE || day === MAXVALUE) return day;
  switch (keyType) {
    case 'date':
      return literal(day);
    case 'timestamp':
      return literal(`${day} 00:00:00`);
    case 'timestamptz':
      return literal(`${day} 00:00:00+00`);
  }
}

export function createPartitionedTableSql(tp: TablePlan): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${qname(tp.schema, tp.names.partitioned)} ` +
    `(LIKE ${qname(tp.schema, tp.table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED ` +
    `INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE (${ident(tp.partitionKey)})`
  );
}

export function primaryKeySql(tp: TablePlan): string {
  return (
    `ALTER TABLE ${qname(tp.schema, tp.names.partitioned)} ADD CONSTRAINT ${ident(tp.names.pkTempConstraint)} ` + `PRIMARY KEY (${list(tp.partitionedKey)})`
  );
}

/** A storage parameter as `pg_class.reloptions` holds it (`name=value`), split. */
function reloption(o: string): [string, string] {
  const i = o.indexOf('=');
  return [o.slice(0, i), o.slice(i + 1)];
}

/** The table's own setting of storage parameter `name` (`tp.storage`, the TOAST table's with `toast`), or undefined. */
function ownSetting(tp: TablePlan, name: string, toast: boolean): string | undefined {
  return ((toast ? tp.storage?.toast : tp.storage?.table) ?? []).map(reloption).find(([n]) => n === name)?.[1];
}

/**
 * The WITH clause of a partition: the table's storage parameters (fillfactor, its autovacuum
 * settings, its TOAST table's), which a partition has to carry itself (a partitioned table takes
 * none). `copied`: a partition the copy fills, with autovacuum off until its statistics are
 * gathered (activities/autovacuum.ts); else it would vacuum and analyze each partition as the
 * copy fills it, a busy backend beside the copy the application's writes feel, holding the lock
 * each index build and validation then waits for, and its statistics gathered again before approval.
 */
export function storageSql(tp: TablePlan, opts: { copied?: boolean } = {}): string {
  const own = (list: string[] | undefined, prefix: string) =>
    (list ?? [])
      .map(reloption)
      .filter(([n]) => !(opts.copied && n === 'autovacuum_enabled'))
      .map(([n, v]) => `${prefix}${ident(n)} = ${literal(v)}`);
  const out = [...own(tp.storage?.table, ''), ...own(tp.storage?.toast, 'toast.')];
  if (opts.copied) out.push('autovacuum_enabled = false', 'toast.autovacuum_enabled = false');
  return out.length ? ` WITH (${out.join(', ')})` : '';
}

/** Autovacuum of a partition back to the table's own setting (storageSql turned it off for the copy). */
export function resumeAutovacuumSql(tp: TablePlan, schema: string, name: string): string {
  const set = ['', 'toast.'].flatMap((prefix) => {
    const own = ownSetting(tp, 'autovacuum_enabled', prefix !== '');
    return own === undefined ? [] : [`${prefix}autovacuum_enabled = ${literal(own)}`];
  });
  return `ALTER TABLE ${qname(schema, name)} RESET (autovacuum_enabled, toast.autovacuum_enabled)${set.length ? `, SET (${set.join(', ')})` : ''}`;
}

/** Whether the table itself has autovacuum off (then so have its partitions, and nothing is paused or resumed). */
export function autovacuumOff(tp: TablePlan): { table: boolean; toast: boolean } {
  return { table: ownSetting(tp, 'autovacuum_enabled', false) === 'false', toast: ownSetting(tp, 'autovacuum_enabled', true) === 'false' };
}

/** `copied`: a partition the copy will fill (storageSql). */
export function partitionSql(tp: TablePlan, parent: string, p: PartitionRange, opts: { copied?: boolean } = {}): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${qname(tp.schema, partitionNameFor(tp, p))} PARTITION OF ${qname(tp.schema, parent)} ` +
    `FOR VALUES FROM (${boundLiteral(p.from, tp.keyType)}) TO (${boundLiteral(p.to, tp.keyType)})${storageSql(tp, opts)}`
  );
}

/** The partition's name as the plan recorded it (plans before names were recorded: derived the same way). */
export function partitionNameFor(tp: TablePlan, p: PartitionRange): string {
  return p.name ?? partitionName(tp.table, p.suffix);
}

export function defaultPartitionName(tp: TablePlan): string {
  return tp.names.defaultPartition ?? `${tp.table.slice(0, 55)}_default`;
}

export function defaultPartitionSql(tp: TablePlan, parent: string, opts: { copied?: boolean } = {}): string {
  return `CREATE TABLE IF NOT EXISTS ${qname(tp.schema, defaultPartitionName(tp))} PARTITION OF ${qname(tp.schema, parent)} DEFAULT${storageSql(tp, opts)}`;
}

/**
 * Trigger function that keeps `target` equal to the table it fires on: a delete removes the
 * row, an update that changes the key removes the old row first (so a partition-key change
 * moves the row), and every insert or update is an upsert on the target's key.
 *
 * With `keyMustBeFree` (the mirror back to `<table>_legacy`, whose key is narrower than the
 * partitioned table's), a new key is inserted, never upserted: a row whose legacy key already
 * belongs to another row (the same id in another period) fails with a message saying why,
 * instead of overwriting that row, which a rollback would then lose.
 */
export function syncFunctionSql(opts: {
  schema: string;
  fn: string;
  target: string;
  columns: string[];
  key: string[];
  overridingSystemValue?: boolean;
  keyMustBeFree?: boolean;
  /** Log the written rows' keys (these columns) to CHANGED_KEYS, for the re-check and the incremental verification. */
  logKey?: string[];
}): string {
  const { schema, fn, target, columns, key } = opts;
  const t = qname(schema, target);
  const match = key.map((k) => `${ident(k)} = OLD.${ident(k)}`).join(' AND ');
  const rest = columns.filter((c) => !key.includes(c));
  const onConflict = rest.length ? `DO UPDATE SET ${rest.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}` : 'DO NOTHING';
  const keyChanged = `(${list(key, 'OLD.')}) IS DISTINCT FROM (${list(key, 'NEW.')})`;
  const insert = `INSERT INTO ${t} (${list(columns)})${opts.overridingSystemValue ? ' OVERRIDING SYSTEM VALUE' : ''} VALUES (${list(columns, 'NEW.')})`;
  const strict = opts.keyMustBeFree
    ? [
        `  IF TG_OP = 'INSERT' OR ${keyChanged} THEN`,
        `    IF EXISTS (SELECT 1 FROM ${t} WHERE ${key.map((k) => `${ident(k)} = NEW.${ident(k)}`).join(' AND ')}) THEN`,
        `      RAISE EXCEPTION USING ERRCODE = 'unique_violation',`,
        `        MESSAGE = format('duplicate key (%s)=(%s): %s keeps the rows for a rollback until cleanup and still enforces that key, where another row has it',`,
        `          ${literal(key.join(', '))}, concat_ws(', ', ${list(key, 'NEW.')}), ${literal(t)}),`,
        `        HINT = 'Write this row with a key of its own, or run the switchover''s cleanup once a rollback is no longer needed (the wider key then applies).';`,
        `    END IF;`,
        `    ${insert};`,
        `    RETURN NEW;`,
        `  END IF;`,
      ]
    : [];
  return [
    // SECURITY DEFINER: the sync is ours, not the writer's; a role that may only insert into the
    // table, or that row-level security filters, must not fail on the other table's upsert.
    // EXECUTE is revoked from PUBLIC (syncSql): only our triggers run it.
    `CREATE OR REPLACE FUNCTION ${qname(schema, fn)}() RETURNS trigger LANGUAGE plpgsql`,
    // The pinned search_path keeps a caller's own operators out (the table's schema stays, for
    // key types from extensions).
    `  SECURITY DEFINER SET search_path = pg_catalog, ${ident(schema)}, pg_temp AS $ps$`,
    `BEGIN`,
    ...(opts.logKey ? changedKeyLog(opts.logKey) : []),
    `  IF TG_OP = 'DELETE' THEN`,
    `    DELETE FROM ${t} WHERE ${match};`,
    `    RETURN OLD;`,
    `  END IF;`,
    `  IF TG_OP = 'UPDATE' AND ${keyChanged} THEN`,
    `    DELETE FROM ${t} WHERE ${match};`,
    `  END IF;`,
    ...strict,
    `  ${insert}`,
    `    ON CONFLICT (${list(key)}) ${onConflict};`,
    `  RETURN NEW;`,
    `END`,
    `$ps$`,
  ].join('\n');
}

/** Where the dual-write trigger logs the keys it writes (sql/state.sql). */
export const CHANGED_KEYS = 'partition_switchover.changed_keys';

/**
 * The keys a write touched, as a json array of the partitioned table's key (the table's key and
 * the partition key): the old one of an update or delete, the new one of an insert or of an update
 * that changes it. Logged in the writer's transaction: the copy's re-check and the incremental
 * verification compare exactly these rows, not whole tables, and every partitioned row of a
 * logged id is at one of its logged keys (a lookup pruned to one partition).
 */
function changedKeyLog(key: string[]): string[] {
  const json = (rec: string) => `json_build_array(${list(key, `${rec}.`)})::text`;
  return [
    `  IF TG_OP <> 'INSERT' THEN`,
    `    INSERT INTO ${CHANGED_KEYS} (table_oid, key) VALUES (TG_RELID, ${json('OLD')});`,
    `  END IF;`,
    `  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (${list(key, 'OLD.')}) IS DISTINCT FROM (${list(key, 'NEW.')})) THEN`,
    `    INSERT INTO ${CHANGED_KEYS} (table_oid, key) VALUES (TG_RELID, ${json('NEW')});`,
    `  END IF;`,
  ];
}

export function triggerSql(schema: string, table: string, trigger: string, fn: string): string {
  return (
    `CREATE OR REPLACE TRIGGER ${ident(trigger)} AFTER INSERT OR UPDATE OR DELETE ON ${qname(schema, table)} ` +
    `FOR EACH ROW EXECUTE FUNCTION ${qname(schema, fn)}()`
  );
}

/**
 * Our row triggers fire whatever the session's session_replication_role: a writer (or a
 * logical replication apply worker) running as `replica` skips triggers enabled the ordinary way,
 * and its rows would reach one table only.
 */
export function alwaysSql(schema: string, table: string, trigger: string): string {
  return `ALTER TABLE ${qname(schema, table)} ENABLE ALWAYS TRIGGER ${ident(trigger)}`;
}

/** The statement trigger that records a write made straight to the partitioned copy (sql/state.sql note_direct_write). */
export const DIRECT_WRITE_TRIGGER = 'ps_direct_write';

/**
 * Until cutover only the dual-write trigger, the copy and the re-check's repair write the
 * partitioned copy. Any other statement on it is recorded (not refused: it is not the
 * application's table yet, and a DBA may have a reason), so verification compares every row.
 * Nested statements (our trigger's) are not even evaluated: pg_trigger_depth() is 1 there.
 */
export function directWriteGuardSql(tp: TablePlan, table = tp.names.partitioned): string[] {
  const t = qname(tp.schema, table);
  return [
    `CREATE OR REPLACE TRIGGER ${ident(DIRECT_WRITE_TRIGGER)} BEFORE INSERT OR UPDATE OR DELETE ON ${t} ` +
      `FOR EACH STATEMENT WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION partition_switchover.note_direct_write()`,
    alwaysSql(tp.schema, table, DIRECT_WRITE_TRIGGER),
  ];
}

/** Cleanup: the guards the partitions kept since prepare (they record nothing after cutover). */
export function dropDirectWriteGuardsSql(tp: TablePlan, partitions: string[]): string[] {
  return partitions.map((p) => `DROP TRIGGER IF EXISTS ${ident(DIRECT_WRITE_TRIGGER)} ON ${qname(tp.schema, p)}`);
}

/** Set (SET LOCAL) by the copy and the repair, whose writes to the partitioned copy are ours. */
export const OUR_WRITE_SQL = `SET LOCAL partition_switchover.writer = 'copy'`;

/** Our SECURITY DEFINER functions run only from our triggers: nobody may attach them to a table of theirs. */
export function revokeSql(schema: string, fn: string): string {
  return `REVOKE ALL ON FUNCTION ${qname(schema, fn)}() FROM PUBLIC`;
}

export const TRUNCATE_GUARD_TRIGGER = 'ps_no_truncate';

/**
 * The TRUNCATE guard: a TRUNCATE bypasses the row triggers that keep the two tables equal, so
 * while a switchover holds them (triggers installed, until rollback or cleanup) it is refused on
 * both, naming what to do. The triggers follow their tables through the cutover's renames.
 */
export function truncateGuardSql(tp: TablePlan): string[] {
  const fn = tp.names.guardFunction;
  if (!fn) return [];
  const guard = (table: string) =>
    `CREATE OR REPLACE TRIGGER ${ident(TRUNCATE_GUARD_TRIGGER)} BEFORE TRUNCATE ON ${qname(tp.schema, table)} ` +
    `FOR EACH STATEMENT EXECUTE FUNCTION ${qname(tp.schema, fn)}()`;
  return [
    [
      `CREATE OR REPLACE FUNCTION ${qname(tp.schema, fn)}() RETURNS trigger LANGUAGE plpgsql AS $ps$`,
      `BEGIN`,
      `  RAISE EXCEPTION USING ERRCODE = 'object_in_use',`,
      `    MESSAGE = format('TRUNCATE of %I.%I is refused while partition-switchover keeps %s and %s equal: a TRUNCATE bypasses the row triggers that do it',`,
      `      TG_TABLE_SCHEMA, TG_TABLE_NAME, ${literal(tp.table)}, ${literal(tp.names.partitioned)}),`,
      `    HINT = 'Delete the rows instead (DELETE FROM ...), or roll the switchover back or clean it up first.';`,
      `END`,
      `$ps$`,
    ].join('\n'),
    revokeSql(tp.schema, fn),
    guard(tp.table),
    guard(tp.names.partitioned),
  ];
}

/** Drops the guard function and, with it, its triggers on whichever of our tables still exist (run where those are locked). */
export function dropTruncateGuardSql(tp: TablePlan): string[] {
  return tp.names.guardFunction ? [`DROP FUNCTION IF EXISTS ${qname(tp.schema, tp.names.guardFunction)}() CASCADE`] : [];
}

/** Dual-write: legacy table → partitioned copy, matched on the partitioned key; TRUNCATE refused on both. */
export function dualWriteSql(tp: TablePlan): string[] {
  return [
    syncFunctionSql({
      schema: tp.schema,
      fn: tp.names.syncFunction,
      target: tp.names.partitioned,
      columns: tp.insertColumns,
      key: tp.partitionedKey,
      logKey: tp.changeLog ? tp.partitionedKey : undefined,
    }),
    revokeSql(tp.schema, tp.names.syncFunction),
    triggerSql(tp.schema, tp.table, tp.names.syncTrigger, tp.names.syncFunction),
    alwaysSql(tp.schema, tp.table, tp.names.syncTrigger),
    ...truncateGuardSql(tp),
    ...(tp.changeLog ? directWriteGuardSql(tp) : []),
  ];
}

/** Mirror after cutover: the partitioned table (now `<table>`) → `<table>_legacy`, matched on the legacy key. */
export function mirrorSql(tp: TablePlan): string[] {
  return [
    syncFunctionSql({
      schema: tp.schema,
      fn: tp.names.mirrorFunction,
      target: tp.names.legacy,
      columns: tp.insertColumns,
      key: tp.primaryKey,
      overridingSystemValue: tp.columns.some((c) => c.identity === 'a'),
      keyMustBeFree: true,
    }),
    revokeSql(tp.schema, tp.names.mirrorFunction),
    triggerSql(tp.schema, tp.table, tp.names.mirrorTrigger, tp.names.mirrorFunction),
    alwaysSql(tp.schema, tp.table, tp.names.mirrorTrigger),
  ];
}

export function dropSyncSql(tp: TablePlan, on: string, trigger: string, fn: string): string[] {
  return [`DROP TRIGGER IF EXISTS ${ident(trigger)} ON ${qname(tp.schema, on)}`, `DROP FUNCTION IF EXISTS ${qname(tp.schema, fn)}()`];
}

/** `$1::type` placeholders for the key columns, numbered from `start`. */
function typedParams(tp: TablePlan, cols: string[], start: number): string {
  return cols.map((c, i) => `$${start + i}::${columnType(tp, c)}`).join(', ');
}

export function columnType(tp: TablePlan, col: string): string {
  const c = tp.columns.find((x) => x.name === col);
  if (!c) throw new Error(`column ${col} is not in ${tp.table}`);
  return c.type;
}

/**
 * One copy batch: the next `limit` rows after the cursor, in key order, locked FOR SHARE so a
 * concurrent update or delete waits for the batch to commit (then the dual-write trigger applies
 * it on top); ON CONFLICT DO NOTHING keeps a newer version the trigger already wrote. Params:
 * cursor values (when `withCursor`), then lo/hi of the split column (when bounded), then limit.
 */
/** `lock` (default): the batch's rows FOR SHARE (copy mode "lock"). */
export function copyBatchSql(tp: TablePlan, opts: { withCursor: boolean; lo: boolean; hi: boolean; lock?: boolean }): string {
  const where: string[] = [];
  let n = 1;
  if (opts.withCursor) {
    where.push(`(${list(tp.primaryKey)}) > (${typedParams(tp, tp.primaryKey, n)})`);
    n += tp.primaryKey.length;
  }
  const split = tp.splitColumn;
  if (opts.lo && split) where.push(`${ident(split)} >= $${n++}::${columnType(tp, split)}`);
  if (opts.hi && split) where.push(`${ident(split)} < $${n++}::${columnType(tp, split)}`);
  const cols = list(tp.insertColumns);
  const order = list(tp.primaryKey);
  return [
    `WITH batch AS (`,
    `  SELECT ${cols} FROM ${qname(tp.schema, tp.table)}`,
    where.length ? `  WHERE ${where.join(' AND ')}` : null,
    `  ORDER BY ${order} LIMIT $${n}${opts.lock === false ? '' : ' FOR SHARE'}`,
    `), ins AS (`,
    `  INSERT INTO ${qname(tp.schema, tp.names.partitioned)} (${cols}) SELECT ${cols} FROM batch ON CONFLICT DO NOTHING RETURNING 1`,
    `)`,
    `SELECT (SELECT count(*) FROM batch)::int AS rows, (SELECT count(*) FROM ins)::int AS inserted,`,
    `  (SELECT json_build_array(${tp.primaryKey.map((k) => `${ident(k)}::text`).join(', ')}) FROM batch ORDER BY ${list(tp.primaryKey)} DESC LIMIT 1) AS last`,
  ]
    .filter((l) => l !== null)
    .join('\n');
}

/** SQL expression giving the start of the period a row's key falls in, as YYYY-MM-DD (UTC session). */
export function rangeExpr(tp: TablePlan): string {
  return `to_char(date_trunc(${literal(tp.interval)}, ${ident(tp.partitionKey)}), 'YYYY-MM-DD')`;
}

// Types with no extended hash function (hash_record_extended fails on a row holding one), and
// what they are hashed as instead: the same value in a hashable type.
const UNHASHABLE = new Map([
  ['json', 'jsonb'],
  ['money', 'numeric'],
  ...['xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle', 'tsvector', 'tsquery'].map((t) => [t, 'text'] as const),
]);

/** A column as the row hash reads it: cast to a hashable type where its own has no hash. */
function hashable(tp: TablePlan, name: string): string {
  const col = tp.columns.find((c) => c.name === name);
  if (col?.hashAs === 'text') return `${ident(name)}::text`;
  const type = col?.type ?? '';
  const m = /^(\w+)((?:\[\])*)$/.exec(type);
  const cast = m ? UNHASHABLE.get(m[1]) : undefined;
  return cast ? `${ident(name)}::${cast}${m![2]}` : ident(name);
}

export function rowHashExpr(tp: TablePlan): string {
  return `hash_record_extended(ROW(${tp.columns.map((c) => hashable(tp, c.name)).join(', ')}), 0)`;
}

/** `sum(col)` as exact text: money is summed as numeric (money's text is locale-formatted: `$1,234.00`). */
function sumExpr(tp: TablePlan, c: string): string {
  const type = tp.columns.find((x) => x.name === c)?.type;
  return `coalesce(sum(${type === 'money' ? `${ident(c)}::numeric` : ident(c)}), 0)::text AS ${ident(`sum_${c}`)}`;
}

/** Per-range row count, sums of the money columns and the sum of every row's hash. */
export function checksumByRangeSql(tp: TablePlan, table: string): string {
  const sums = tp.sumColumns.map((c) => sumExpr(tp, c));
  return [
    `SELECT ${rangeExpr(tp)} AS range, count(*)::bigint AS rows,`,
    sums.length ? `  ${sums.join(', ')},` : null,
    `  coalesce(sum(${rowHashExpr(tp)}), 0)::text AS row_hash`,
    `FROM ${qname(tp.schema, table)} GROUP BY 1 ORDER BY 1`,
  ]
    .filter((l) => l !== null)
    .join('\n');
}

/** Whole-table checksum (stage records): rows, sums, row hash. */
export function checksumSql(tp: TablePlan, table: string): string {
  const sums = tp.sumColumns.map((c) => sumExpr(tp, c));
  return [
    `SELECT count(*)::bigint AS rows,`,
    sums.length ? `  ${sums.join(', ')},` : null,
    `  coalesce(sum(${rowHashExpr(tp)}), 0)::text AS row_hash`,
    `FROM ${qname(tp.schema, table)}`,
  ]
    .filter((l) => l !== null)
    .join('\n');
}

/** Ids of rows that differ between legacy and partitioned within one range ($1 from, $2 to). */
export function diffIdsSql(tp: TablePlan): string {
  const keyCols = tp.partitionedKey;
  const side = (table: string) => `SELECT ${list(keyCols)}, ${rowHashExpr(tp)} AS h FROM ${qname(tp.schema, table)} ` + `WHERE ${rangeExpr(tp)} = $1`;
  const id = `concat_ws(',', ${tp.primaryKey.map((k) => `coalesce(l.${ident(k)}, p.${ident(k)})::text`).join(', ')})`;
  return (
    `SELECT DISTINCT ${id} AS id FROM (${side(tp.table)}) l FULL JOIN (${side(tp.names.partitioned)}) p ` +
    `USING (${list(keyCols)}) WHERE l.h IS DISTINCT FROM p.h ORDER BY 1 LIMIT 10`
  );
}

/** Renames that make the partitioned table take the table's place (reversed by rollback). */
export function swapRenames(tp: TablePlan, direction: 'cutover' | 'rollback'): string[] {
  const t = tp.schema;
  const rename = (from: string, to: string) => `ALTER TABLE ${qname(t, from)} RENAME TO ${ident(to)}`;
  const renameIdx = (from: string, to: string) => `ALTER INDEX ${qname(t, from)} RENAME TO ${ident(to)}`;
  // Plans recorded before legacy index names were part of the plan derived them this way.
  const legacyIdx = (i: TablePlan['indexes'][number]) => i.legacyName ?? `${i.name.slice(0, 56)}_legacy`;
  if (direction === 'cutover') {
    return [
      rename(tp.table, tp.names.legacy),
      rename(tp.names.partitioned, tp.table),
      ...tp.indexes.map((i) => renameIdx(i.name, legacyIdx(i))),
      ...tp.indexes.map((i) => renameIdx(i.tempName, i.name)),
    ];
  }
  return [
    rename(tp.table, tp.names.partitioned),
    rename(tp.names.legacy, tp.table),
    ...tp.indexes.map((i) => renameIdx(i.name, i.tempName)),
    ...tp.indexes.map((i) => renameIdx(legacyIdx(i), i.name)),
  ];
}

export function sequenceOwnershipSql(tp: TablePlan, ownerTable: string): string[] {
  return tp.sequences.map((s) => `ALTER SEQUENCE ${qname(tp.schema, s.sequence)} OWNED BY ${qname(tp.schema, ownerTable)}.${ident(s.column)}`);
}

/** The cutover transaction's statements after the lock is taken. */
export function cutoverSql(tp: TablePlan): string[] {
  return [
    ...dropSyncSql(tp, tp.table, tp.names.syncTrigger, tp.names.syncFunction),
    `DROP TRIGGER IF EXISTS ${ident(DIRECT_WRITE_TRIGGER)} ON ${qname(tp.schema, tp.names.partitioned)}`,
    ...swapRenames(tp, 'cutover'),
    ...sequenceOwnershipSql(tp, tp.table),
    ...carryCutoverSql(tp),
    ...mirrorSql(tp),
  ];
}

/**
 * ACCESS EXCLUSIVE on the tables, in the order given (writers' order: the table, then its copy).
 * lock_timeout is set per statement by activities/locks.ts, within a budget below deadlock_timeout.
 */
export function lockSql(tp: TablePlan, tables: string[]): string[] {
  return [`LOCK TABLE ${tables.map((x) => qname(tp.schema, x)).join(', ')} IN ACCESS EXCLUSIVE MODE`];
}

/** The schema-qualified, quoted name a view's CREATE OR REPLACE VIEW statement (src/carrysql.ts viewSql) names. */
export function viewName(createSql: string): string {
  const m = /^CREATE OR REPLACE VIEW ("(?:[^"]|"")*"\."(?:[^"]|"")*")/.exec(createSql);
  if (!m) throw new Error(`cannot read the view name of: ${createSql.slice(0, 80)}`);
  return m[1];
}

/**
 * ACCESS EXCLUSIVE on a view alone, before its table (readers lock the view, then the table):
 * LOCK TABLE on a view would also lock every table the view reads, and an owner change to the
 * owner it has is a no-op that takes the view's lock only.
 */
export function viewLockSql(schema: string, view: string, owner: string): string {
  return `ALTER VIEW ${qname(schema, view)} OWNER TO ${ident(owner)}`;
}

// Tables are dropped by name only after checking that the relation under the name is the one the
// switchover recorded (activities/bookkeeping.ts dropIfOurs), so these lists hold no DROP TABLE.

/** Undo of the cutover: mirror off, names back, sequences home, views and trigger states as they were. */
export function undoCutoverSql(tp: TablePlan): string[] {
  return [
    ...dropSyncSql(tp, tp.table, tp.names.mirrorTrigger, tp.names.mirrorFunction),
    ...swapRenames(tp, 'rollback'),
    ...sequenceOwnershipSql(tp, tp.table),
    ...carryRollbackSql(tp).beforeDrop,
  ];
}

/** Undo of the triggers stage: the dual-write trigger and function off, the TRUNCATE guard off. */
export function undoTriggersSql(tp: TablePlan): string[] {
  return [...dropSyncSql(tp, tp.table, tp.names.syncTrigger, tp.names.syncFunction), ...dropTruncateGuardSql(tp)];
}

/** Cleanup: the mirror off; then `<table>_legacy` and the backup are dropped (if ours). */
export function cleanupSql(tp: TablePlan): string[] {
  return [...dropSyncSql(tp, tp.table, tp.names.mirrorTrigger, tp.names.mirrorFunction), ...dropTruncateGuardSql(tp)];
}

export function dropTableSql(tp: TablePlan, name: string): string {
  return `DROP TABLE ${qname(tp.schema, name)}`;
}

const PRIVILEGES: Record<string, string> = {
  r: 'SELECT',
  a: 'INSERT',
  w: 'UPDATE',
  d: 'DELETE',
  D: 'TRUNCATE',
  x: 'REFERENCES',
  t: 'TRIGGER',
};

/** An aclitem's grantee (`PUBLIC` or a quoted role) and privileges, from text `grantee=privs/grantor`. */
function parseAclItem(item: string): { grantee: string; privs: string[] } | null {
  const m = /^("(?:[^"]|"")*"|[^=]*)=([^/]*)\//.exec(item);
  if (!m) return null;
  const rawGrantee = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1];
  const privs = [...m[2]].filter((ch) => PRIVILEGES[ch]).map((ch) => PRIVILEGES[ch]);
  return privs.length ? { grantee: rawGrantee === '' ? 'PUBLIC' : ident(rawGrantee), privs } : null;
}

/**
 * GRANTs re-creating the legacy table's ACL and its column ACLs on the partitioned one (or
 * `table`; `only` these privileges). An owner-only table (ACL NULL) needs none: the partitioned
 * table has the same owner (prepareSteps).
 */
export function grantSql(tp: TablePlan, opts: { table?: string; only?: string[] } = {}): string[] {
  const on = qname(tp.schema, opts.table ?? tp.names.partitioned);
  const keep = (privs: string[]) => privs.filter((p) => !opts.only || opts.only.includes(p));
  const out: string[] = [];
  const grants = (item: string, what: (privs: string[]) => string) => {
    const g = parseAclItem(item);
    const privs = g ? keep(g.privs) : [];
    if (g && privs.length) out.push(`GRANT ${what(privs)} ON ${on} TO ${g.grantee}`);
  };
  for (const item of tp.acl) grants(item, (privs) => privs.join(', '));
  for (const col of tp.columnAcl ?? []) {
    for (const item of col.acl) grants(item, (privs) => privs.map((p) => `${p} (${ident(col.column)})`).join(', '));
  }
  return out;
}

/**
 * `<table>_backup` is the application's data: the table's owner owns it (the worker's role is a
 * member of it, preflight checks), and whoever may read the table (or columns of it) may read it.
 */
export function backupAccessSql(tp: TablePlan): string[] {
  return [
    ...(tp.owner ? [`ALTER TABLE ${qname(tp.schema, tp.names.backup)} OWNER TO ${ident(tp.owner)}`] : []),
    ...grantSql(tp, { table: tp.names.backup, only: ['SELECT'] }),
  ];
}

export function backupSql(tp: TablePlan): string {
  return `CREATE TABLE ${qname(tp.schema, tp.names.backup)} AS SELECT * FROM ${qname(tp.schema, tp.table)}`;
}

/**
 * The rollback's drop of `<table>_partitioned` in steps (activities/prepare.ts dropPrepared): a
 * foreign key of it (the table, then the one it references, as writers lock them; ONLY: a
 * partitioned table's LOCK would take every partition), and a batch of its partitions.
 */
export function dropForeignKeySql(tp: TablePlan, fk: { name: string; refSchema: string; refTable: string }): string[] {
  const part = qname(tp.schema, tp.names.partitioned);
  return [
    `LOCK TABLE ONLY ${part}, ONLY ${qname(fk.refSchema, fk.refTable)} IN ACCESS EXCLUSIVE MODE`,
    `ALTER TABLE ${part} DROP CONSTRAINT IF EXISTS ${ident(fk.name)}`,
  ];
}

export function lockPartitionedOnlySql(tp: TablePlan): string {
  return `LOCK TABLE ONLY ${qname(tp.schema, tp.names.partitioned)} IN ACCESS EXCLUSIVE MODE`;
}

export function dropPartitionsSql(tp: TablePlan, names: string[]): string {
  return `DROP TABLE ${names.map((x) => qname(tp.schema, x)).join(', ')}`;
}

/** A table's exact row count, as n: preflight's when the table was never analyzed, the backup's, verification's, the cutover's, the rehearsal's. */
export function rowCountSql(schema: string, table: string): string {
  return `SELECT count(*)::bigint AS n FROM ${qname(schema, table)}`;
}
