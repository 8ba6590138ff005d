// Preflight: read the catalog, refuse what cannot be migrated safely, and build the plan.
// Read-only: a dry run is preflight alone.
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { Deps, stage } from './context';
import { fail } from '../src/errors';
import type { SwitchoverInput, TableSpec } from '../src/input';
import { partitionRanges } from '../src/partitions';
import * as sql from '../src/sqlgen';
import { deferredIndex, indexOn, rangeBatchSql } from '../src/copysql';
import type { ColumnInfo, IndexPlan, KeyType, Plan, TableNames, TablePlan } from '../src/types';
import { readCarried } from './carried';
import { referencedTable } from './indexes';

const KEY_TYPES: Record<string, KeyType> = {
  date: 'date',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
};
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);
const MONEY_NAME = /(amount|cents|balance|total|price|cost|opening|closing)/i;

export function namesFor(table: string): TableNames {
  const short = (suffix: string) => `${table.slice(0, 63 - suffix.length)}${suffix}`;
  return {
    partitioned: short('_partitioned'),
    legacy: short('_legacy'),
    backup: short('_backup'),
    syncFunction: short('_ps_sync'),
    syncTrigger: 'ps_dual_write',
    mirrorFunction: short('_ps_mirror'),
    mirrorTrigger: 'ps_mirror_to_legacy',
    pkConstraint: '',
    pkTempConstraint: '',
  };
}

export function defaultSumColumns(columns: ColumnInfo[]): string[] {
  return columns
    .filter((c) => c.type.startsWith('numeric') || c.type === 'money' || (INTEGER_TYPES.has(c.type) && MONEY_NAME.test(c.name)))
    .map((c) => c.name);
}

interface IndexRow {
  name: string;
  is_primary: boolean;
  is_unique: boolean;
  constraint_type: string | null;
  constraint_def: string | null;
  columns: string[];
  has_expressions: boolean;
  using_clause: string;
}

/** Inspects one table. Returns the plan, or the list of reasons it cannot be migrated. */
export async function inspectTable(
  db: pg.ClientBase,
  schema: string,
  spec: TableSpec,
  opts: { today: string; premake: number; defaultPartition: boolean },
): Promise<{ plan?: TablePlan; problems: string[] }> {
  const problems: string[] = [];
  const t = `${schema}.${spec.table}`;
  const rel = (await db.query(sqlFile('catalog/table'), [schema, spec.table])).rows[0];
  if (!rel) return { problems: [`table ${t} does not exist (check "schema" and "tables[].table")`] };
  if (rel.relkind === 'p') return { problems: [`table ${t} is already partitioned; nothing to migrate`] };
  if (rel.relkind !== 'r') return { problems: [`${t} is not a plain table (relkind ${rel.relkind})`] };

  const columns: ColumnInfo[] = (await db.query(sqlFile('catalog/columns'), [rel.oid])).rows.map((r) => ({
    name: r.name,
    type: r.type,
    notNull: r.not_null,
    generated: r.generated,
    identity: r.identity as ColumnInfo['identity'],
  }));
  const key = columns.find((c) => c.name === spec.partitionKey);
  const keyType = key ? KEY_TYPES[key.type] : undefined;
  if (!key) problems.push(`partition key column "${spec.partitionKey}" does not exist in ${t}`);
  else if (!keyType) problems.push(`partition key ${t}.${spec.partitionKey} is of type ${key.type}; it must be date, timestamp or timestamptz`);

  const indexes: IndexRow[] = (await db.query(sqlFile('catalog/indexes'), [rel.oid])).rows;
  const pk = indexes.find((i) => i.is_primary);
  if (!pk) problems.push(`${t} has no primary key; add one (the copy, triggers and verification match rows by it)`);
  else if (pk.has_expressions) problems.push(`${t}'s primary key uses expressions, which cannot be carried over`);

  for (const i of indexes) {
    if (i.is_primary) continue;
    if (i.is_unique && !i.columns.includes(spec.partitionKey)) {
      problems.push(
        `unique index ${i.name} on ${t} (${i.columns.join(', ') || 'expressions'}) does not include the partition key ` +
          `${spec.partitionKey}; PostgreSQL cannot enforce it on a partitioned table. Add ${spec.partitionKey} to it or drop it first`,
      );
    }
    if (i.constraint_type === 'x') problems.push(`exclusion constraint ${i.name} on ${t} cannot be carried onto a partitioned table`);
  }

  const fks = (await db.query(sqlFile('catalog/foreign_keys'), [rel.oid])).rows;
  for (const fk of fks.filter((f) => f.direction === 'in')) {
    problems.push(
      `foreign key ${fk.name} on ${fk.from_table} references ${t}; a partitioned table cannot take the referenced side ` +
        `while it is renamed under it. Drop the foreign key before the switchover and re-create it afterwards`,
    );
  }

  for (const c of spec.sumColumns ?? []) {
    if (!columns.some((x) => x.name === c)) problems.push(`sumColumns: column "${c}" does not exist in ${t}`);
  }
  // Identity, views, row-level security and the application's triggers go along too.
  const carried = await readCarried(db, rel.oid, schema, spec.table, namesFor(spec.table));
  problems.push(...carried.problems);
  if (problems.length || !key || !keyType || !pk) return { problems };

  const warnings: string[] = [];
  const k = sql.ident(spec.partitionKey);
  const tq = sql.qname(schema, spec.table);
  const cast = keyType === 'timestamptz' ? `(%s at time zone 'UTC')::date` : `%s::date`;
  const range = (
    await db.query(
      `select ${cast.replace('%s', `min(${k})`)}::text as min, ${cast.replace('%s', `max(${k})`)}::text as max` +
        (key.notNull ? ', false as has_nulls' : `, exists (select 1 from ${tq} where ${k} is null) as has_nulls`) +
        ` from ${tq}`,
    )
  ).rows[0];
  if (range.has_nulls) {
    return {
      problems: [
        `${t}.${spec.partitionKey} holds NULLs; a row without a partition key has no partition. ` +
          `Fill or delete those rows (select * from ${t} where ${spec.partitionKey} is null) and start again`,
      ],
    };
  }
  if (!key.notNull) warnings.push(`${spec.partitionKey} is nullable; an insert with a NULL key will fail after the switchover`);
  // PostgreSQL <= 17: the parent's foreign key adopts the partitions' validated ones by dropping
  // their action triggers on the referenced table (RemoveTriggerById: ACCESS EXCLUSIVE there).
  for (const f of fks.filter((x) => x.direction === 'out')) {
    const ref = referencedTable(f.definition);
    warnings.push(
      `foreign key ${f.name} references ${ref}: attaching it to the partitioned table takes ACCESS EXCLUSIVE on ${ref} ` +
        `(PostgreSQL drops the partitions' triggers there), held for milliseconds under lock_timeout (kept below deadlock_timeout) ` +
        `and retried with backoff; dropping a table with this foreign key at rollback or cleanup takes the same lock`,
    );
  }

  const primaryKey = pk.columns;
  const partitionedKey = primaryKey.includes(spec.partitionKey) ? primaryKey : [...primaryKey, spec.partitionKey];
  const splitColumn = INTEGER_TYPES.has(columns.find((c) => c.name === primaryKey[0])!.type) ? primaryKey[0] : null;
  let splitRange: TablePlan['splitRange'] = null;
  if (splitColumn) {
    const r = (await db.query(`select min(${sql.ident(splitColumn)})::text as min, max(${sql.ident(splitColumn)})::text as max from ${tq}`)).rows[0];
    if (r.min !== null) splitRange = { min: r.min, max: r.max };
  }
  let rowsEstimated = Number(rel.reltuples);
  if (rowsEstimated < 0) rowsEstimated = Number((await db.query(`select count(*)::bigint as n from ${tq}`)).rows[0].n);

  const names = namesFor(spec.table);
  names.pkConstraint = pk.name;
  names.pkTempConstraint = tempName(pk.name);
  const indexPlans: IndexPlan[] = indexes.map((i) => ({
    name: i.name,
    tempName: tempName(i.name),
    isPrimary: i.is_primary,
    createSql: i.is_primary
      ? ''
      : i.constraint_type === 'u'
        ? `ALTER TABLE ${sql.qname(schema, names.partitioned)} ADD CONSTRAINT ${sql.ident(tempName(i.name))} ${i.constraint_def}`
        : `CREATE ${i.is_unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${sql.ident(tempName(i.name))} ON ${sql.qname(schema, names.partitioned)} USING ${i.using_clause}`,
  }));

  const plan: TablePlan = {
    schema,
    table: spec.table,
    partitionKey: spec.partitionKey,
    interval: spec.interval,
    keyType,
    names,
    columns,
    insertColumns: columns.filter((c) => !c.generated).map((c) => c.name),
    primaryKey,
    partitionedKey,
    splitColumn,
    splitRange,
    rowsEstimated,
    dataRange: { min: range.min, max: range.max },
    partitions: partitionRanges({ min: range.min, max: range.max, today: opts.today, interval: spec.interval, premake: opts.premake }),
    defaultPartition: opts.defaultPartition,
    sumColumns: spec.sumColumns ?? defaultSumColumns(columns),
    indexes: indexPlans,
    sequences: (await db.query(sqlFile('catalog/sequences'), [rel.oid])).rows,
    foreignKeys: fks.filter((f) => f.direction === 'out').map((f) => ({ name: f.name, definition: f.definition })),
    acl: rel.acl ?? [],
    comment: rel.comment ?? null,
    warnings,
    ...carried.carried,
  };
  return { plan, problems: [] };
}

function tempName(name: string): string {
  return `${name.slice(0, 60)}_ps`;
}

/** The statements each stage will run, per table (the dry-run report). */
export function renderPlanSql(tp: TablePlan): Record<string, string[]> {
  return {
    backup: [sql.backupSql(tp)],
    prepare: prepareSql(tp),
    triggers: sql.dualWriteSql(tp),
    copy: [tp.splitColumn ? rangeBatchSql(tp, { lock: false }) : sql.copyBatchSql(tp, { withCursor: true, lo: false, hi: false })],
    index: [
      ...tp.indexes.filter(deferredIndex).map((i) => indexOn(i, { name: i.tempName, on: sql.qname(tp.schema, tp.names.partitioned) })),
      ...tp.foreignKeys.map((f) => `ALTER TABLE ${sql.qname(tp.schema, tp.names.partitioned)} ADD CONSTRAINT ${sql.ident(f.name)} ${f.definition}`),
    ],
    verify: [sql.checksumByRangeSql(tp, tp.table), sql.checksumByRangeSql(tp, tp.names.partitioned)],
    cutover: [...sql.lockSql(tp, [tp.table, tp.names.partitioned]), ...sql.cutoverSql(tp)],
    cleanup: sql.cleanupSql(tp),
  };
}

export function prepareSql(tp: TablePlan): string[] {
  const part = sql.qname(tp.schema, tp.names.partitioned);
  return [
    sql.createPartitionedTableSql(tp),
    ...tp.partitions.map((p) => sql.partitionSql(tp, tp.names.partitioned, p)),
    ...(tp.defaultPartition ? [sql.defaultPartitionSql(tp, tp.names.partitioned)] : []),
    sql.primaryKeySql(tp),
    // Plain secondary indexes are built after the copy (activities/indexes.ts), not here.
    ...tp.indexes.filter((i) => !i.isPrimary && !deferredIndex(i)).map((i) => i.createSql),
    // Foreign keys too: checking each copied row by trigger costs more than the copy itself;
    // validated per partition after it instead (activities/indexes.ts).
    ...grantSql(tp),
    ...(tp.comment !== null ? [`COMMENT ON TABLE ${part} IS ${sql.literal(tp.comment)}`] : []),
    ...(tp.policies ?? []),
  ];
}

/** GRANTs re-creating the legacy table's ACL (aclitem text `grantee=privs/grantor`) on the partitioned one. */
export function grantSql(tp: TablePlan): string[] {
  const letters: Record<string, string> = {
    r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', D: 'TRUNCATE', x: 'REFERENCES', t: 'TRIGGER',
  };
  const out: string[] = [];
  for (const item of tp.acl) {
    const m = /^("(?:[^"]|"")*"|[^=]*)=([^/]*)\//.exec(item);
    if (!m) continue;
    const rawGrantee = m[1].startsWith('"') ? m[1].slice(1, -1).replace(/""/g, '"') : m[1];
    const privs = [...m[2]].filter((ch) => letters[ch]).map((ch) => letters[ch]);
    if (!privs.length) continue;
    const grantee = rawGrantee === '' ? 'PUBLIC' : sql.ident(rawGrantee);
    out.push(`GRANT ${privs.join(', ')} ON ${sql.qname(tp.schema, tp.names.partitioned)} TO ${grantee}`);
  }
  return out;
}

export async function preflightPlan(db: pg.ClientBase, input: SwitchoverInput): Promise<Plan> {
  const today = (await db.query(`select (now() at time zone 'UTC')::date::text as today`)).rows[0].today as string;
  const tables: TablePlan[] = [];
  const problems: string[] = [];
  const refused: string[] = [];
  for (const spec of input.tables) {
    const r = await inspectTable(db, input.schema, spec, {
      today,
      premake: input.premake,
      defaultPartition: input.defaultPartition,
    });
    problems.push(...r.problems);
    if (r.problems.length) refused.push(spec.table);
    if (r.plan) tables.push(r.plan);
  }
  if (problems.length) {
    throw fail('UnsupportedSchema', `preflight refused the switchover: ${problems.join('; ')}. Nothing was changed.`, {
      stage: 'preflight',
      tables: refused,
      problems,
    });
  }
  const planSql: Plan['sql'] = {};
  for (const tp of tables) planSql[tp.table] = renderPlanSql(tp);
  return { schema: input.schema, database: input.database, today, tables, sql: planSql };
}

export function preflightActivities({ pools }: Deps) {
  return {
    /** Reads the catalog and returns the plan; refuses (non-retryable, naming why) what it cannot migrate. */
    async preflight(input: SwitchoverInput): Promise<Plan> {
      return stage('preflight', undefined, () => withClient(pools.get(input.database), (c) => preflightPlan(c, input)));
    },
  };
}
