// Preflight: read the catalog, refuse what cannot be migrated safely, and build the plan.
// Read-only: a dry run is preflight alone.
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { bindDeps, Deps, stage } from './context';
import { fail } from '../src/errors';
import type { SwitchoverInput, TableSpec } from '../src/input';
import { partitionsPerTransaction, relationsPerPartition } from '../src/partitions';
import * as sql from '../src/sqlgen';
import { renderPlanSql, tempName } from '../src/plansql';
import type { ColumnInfo, KeyType, Plan, StrategyName, TablePlan } from '../src/types';
import { readCarried } from './carried';
import { matviewNameConflicts, matviewsInSeveral } from './matviews';
import { matviewPlanSql } from '../src/matviewsql';
import { conflictTargetsAffected, widenedKeyNote } from '../src/conflicts';
import { referencedTable } from './indexes';
import { planAttach } from './attachplan';
import { renderAttachSql } from '../src/attachsql';
import { planKeyTable } from './keytable';
import { withKeyTableSql } from '../src/keytablesql';
import {
  assignsKey,
  defaultSumColumns,
  indexPlansFor,
  indexProblems,
  type IndexRow,
  INTEGER_TYPES,
  type InspectOpts,
  namesFor,
  ownerProblems,
  partitionKeyOf,
  partitionsFor,
  plannedNames,
  referencingProblems,
  type TableRow,
  verifyNote,
} from '../src/preflightchecks';
import {
  columnRangeSql,
  conflictStatementsSql,
  distinctSampleSql,
  hashProbeSql,
  keyRangeSql,
  type NotValidConstraint,
  violationCountSql,
  violationSelectSql,
} from '../src/preflightsql';

/**
 * With pg_stat_statements installed: the application statements whose conflict target is the
 * primary key that widens (they fail, or change meaning, after cutover). Read only.
 */
async function applicationConflicts(db: pg.ClientBase, opts: { table: string; key: string[]; constraint: string }): Promise<string[]> {
  const ext = (await db.query(sqlFile('catalog/stat_statements_schema'))).rows[0];
  if (!ext) return [];
  let queries: string[];
  try {
    const r = await db.query(conflictStatementsSql(ext.nspname));
    queries = r.rows.map((x) => x.query as string);
  } catch (err) {
    return [`pg_stat_statements is installed but cannot be read (${(err as Error).message}); the application's ON CONFLICT statements were not checked`];
  }
  return conflictTargetsAffected(queries, opts)
    .slice(0, 10)
    .map((q) => `application statement using the old key as its conflict target (pg_stat_statements): ${q.replace(/\s+/g, ' ').slice(0, 300)}`);
}

/**
 * The application's BEFORE ... FOR EACH ROW triggers on INSERT or UPDATE: on a partitioned table
 * they run once the row is routed to its partition, and one that changes the partition key to
 * another partition's range fails the write. Refused when the (PL/pgSQL) function visibly assigns
 * NEW.<key> and the trigger is not disabled; otherwise a plan line naming the trigger.
 */
async function beforeRowTriggers(db: pg.ClientBase, oid: number, t: string, table: string, key: string): Promise<{ problems: string[]; warnings: string[] }> {
  const names = namesFor(table);
  const rows = (await db.query(sqlFile('catalog/before_row_triggers'), [oid, [names.syncTrigger, names.mirrorTrigger]])).rows;
  const problems: string[] = [];
  const warnings: string[] = [];
  const fails = `(moving row to another partition during a BEFORE FOR EACH ROW trigger is not supported)`;
  for (const r of rows) {
    const assigns = r.language === 'plpgsql' && assignsKey(r.source, key);
    if (assigns && r.enabled !== 'D') {
      problems.push(
        `trigger ${r.name} on ${t} is a BEFORE ... FOR EACH ROW trigger whose function ${r.function} assigns NEW.${key}, the partition key: ` +
          `on the partitioned table a row is routed to its partition before the trigger runs, so after cutover every write whose key it moves to another partition fails ${fails}. ` +
          `Set ${key} in the application or by a column DEFAULT instead, or drop the trigger, then start again`,
      );
    } else {
      warnings.push(
        `trigger ${r.name} on ${t} is a BEFORE ... FOR EACH ROW trigger (function ${r.function}${
          assigns
            ? `, disabled, whose source assigns NEW.${key}`
            : r.language === 'plpgsql'
              ? ', whose source does not assign NEW.' + key
              : `, ${r.language}: not read`
        }): ` +
          `after cutover it runs once the row is routed to its partition; should it change ${key} to another partition's range, that write fails ${fails}`,
      );
    }
  }
  return { problems, warnings };
}

const NO_HASH = '42883'; // could not identify an extended hash function for type ...

/**
 * Whether the row hash the checksums and verification use works on this table's column types:
 * evaluated on one all-NULL row of the table's type (the hash function is looked up per type,
 * NULL or not), so a type with no extended hash function (bit, varbit, a domain over json or
 * point, an array of them) is found before any change, not at the first checksum. Such a column
 * is hashed as its text (exact: the same value always prints the same), set in `hashAs`.
 */
async function hashColumns(db: pg.ClientBase, t: string, schema: string, table: string, columns: ColumnInfo[]): Promise<string[]> {
  const probe = (expr: string) => db.query(hashProbeSql(schema, table, expr));
  const fails = async (expr: string) => {
    try {
      await probe(expr);
      return null;
    } catch (err) {
      if ((err as { code?: string }).code !== NO_HASH) throw err;
      return (err as Error).message;
    }
  };
  if (!(await fails(sql.rowHashExpr({ columns } as TablePlan)))) return [];
  for (const c of columns) {
    if (await fails(sql.rowHashExpr({ columns: [c] } as TablePlan))) c.hashAs = 'text';
  }
  const still = await fails(sql.rowHashExpr({ columns } as TablePlan));
  if (still)
    return [`${t}: the row hash of the checksums and verification fails (${still}), even with its columns read as text; drop or change the column's type`];
  return [];
}

/** The table as the catalog has it, with the reasons found so far that it cannot be migrated. */
interface CatalogRead {
  rel: TableRow;
  columns: ColumnInfo[];
  key: ColumnInfo;
  keyType: KeyType;
  indexes: IndexRow[];
  pk: IndexRow;
  fks: Record<string, any>[];
  keyTriggers: { problems: string[]; warnings: string[] };
  carried: Awaited<ReturnType<typeof readCarried>>;
}

/** The table's catalog row, or why it is not one to migrate (missing, partitioned, not a table). */
async function readTable(db: pg.ClientBase, schema: string, table: string, t: string): Promise<{ rel?: TableRow; problems: string[] }> {
  const rel = (await db.query(sqlFile('catalog/table'), [schema, table])).rows[0];
  if (!rel) return { problems: [`table ${t} does not exist (check "schema" and "tables[].table")`] };
  if (rel.relkind === 'p') return { problems: [`table ${t} is already partitioned; nothing to migrate`] };
  if (rel.relkind !== 'r') return { problems: [`${t} is not a plain table (relkind ${rel.relkind})`] };
  return { rel, problems: ownerProblems(rel, t, schema) };
}

async function readColumns(db: pg.ClientBase, oid: number): Promise<ColumnInfo[]> {
  return (await db.query(sqlFile('catalog/columns'), [oid])).rows.map((r) => ({
    name: r.name,
    type: r.type,
    notNull: r.not_null,
    generated: r.generated,
    identity: r.identity as ColumnInfo['identity'],
  }));
}

/**
 * Everything preflight reads from the catalog alone (columns, indexes, foreign keys, triggers and
 * what is carried along), with every reason found there that the table cannot be migrated.
 */
async function readCatalog(
  db: pg.ClientBase,
  schema: string,
  spec: TableSpec,
  strategy?: SwitchoverInput['strategy'],
): Promise<{ read?: CatalogRead; problems: string[] }> {
  const t = `${schema}.${spec.table}`;
  const { rel, problems } = await readTable(db, schema, spec.table, t);
  if (!rel) return { problems };
  const columns = await readColumns(db, rel.oid);
  const { key, keyType, problems: keyProblems } = partitionKeyOf(columns, spec, t);
  problems.push(...keyProblems);
  const indexes: IndexRow[] = (await db.query(sqlFile('catalog/indexes'), [rel.oid])).rows;
  const pk = indexes.find((i) => i.is_primary);
  problems.push(...indexProblems(indexes, t, spec.partitionKey));
  const fks = (await db.query(sqlFile('catalog/foreign_keys'), [rel.oid])).rows;
  problems.push(...referencingProblems(fks, t, spec.partitionKey, strategy));
  for (const c of spec.sumColumns ?? []) {
    if (!columns.some((x) => x.name === c)) problems.push(`sumColumns: column "${c}" does not exist in ${t}`);
  }
  const keyTriggers = await beforeRowTriggers(db, rel.oid, t, spec.table, spec.partitionKey);
  problems.push(...keyTriggers.problems);
  // Identity, views, row-level security and the application's triggers go along too.
  const carried = await readCarried(db, rel.oid, schema, spec.table, namesFor(spec.table), spec.partitionKey);
  problems.push(...carried.problems);
  if (problems.length || !key || !keyType || !pk) return { problems };
  return { read: { rel, columns, key, keyType, indexes, pk, fks, keyTriggers, carried }, problems };
}

/** NOT VALID constraints: carried validated when no row violates them, else refused before any change. */
async function checkNotValid(
  db: pg.ClientBase,
  schema: string,
  table: string,
  oid: number,
): Promise<{ notValid: NonNullable<TablePlan['notValid']>; problems: string[] }> {
  const t = `${schema}.${table}`;
  const notValid: NonNullable<TablePlan['notValid']> = [];
  const problems: string[] = [];
  for (const c of (await db.query(sqlFile('catalog/not_valid'), [oid])).rows as NotValidConstraint[]) {
    const n = Number((await db.query(violationCountSql(schema, table, c))).rows[0].n);
    const what = c.type === 'c' ? 'CHECK constraint' : 'foreign key';
    if (n === 0) {
      notValid.push({ name: c.name, type: c.type });
      continue;
    }
    problems.push(
      `${what} ${c.name} on ${t} is NOT VALID and ${n >= 1000 ? 'at least 1000 rows violate' : `${n} row${n === 1 ? ' violates' : 's violate'}`} it ` +
        `(${violationSelectSql(schema, table, c)}); ${c.type === 'f' ? 'a partitioned table cannot have a NOT VALID foreign key' : 'the partitioned table has it validated'}, ` +
        `so those rows could not be carried over. Fix or delete them and run ALTER TABLE ${sql.qname(schema, table)} VALIDATE CONSTRAINT ${sql.ident(c.name)} ` +
        `(or drop the constraint), then start again`,
    );
  }
  return { notValid, problems };
}

/** The plan's lines on the NOT VALID constraints carried validated, the columns hashed as text, and the publications carried. */
function carriedWarnings(t: string, read: CatalogRead, notValid: NonNullable<TablePlan['notValid']>, strategy?: SwitchoverInput['strategy']): string[] {
  const warnings: string[] = [];
  for (const c of notValid) {
    warnings.push(
      `${c.type === 'c' ? 'CHECK constraint' : 'foreign key'} ${c.name} on ${t} is NOT VALID; no row violates it (checked at preflight; PostgreSQL checks every row written since it was added), ` +
        `so the partitioned table has it validated` +
        (strategy === 'attach'
          ? `, and it is validated on ${t} itself before cutover (ALTER TABLE ... VALIDATE CONSTRAINT, a scan under SHARE UPDATE EXCLUSIVE: writes go on); it stays validated after a rollback`
          : ''),
    );
  }
  for (const c of read.columns.filter((x) => x.hashAs)) {
    warnings.push(
      `column ${c.name} (${c.type}) has no extended hash function: checksums and verification hash its text form (${c.name}::text), which is exact`,
    );
  }
  for (const p of read.carried.carried.publications) {
    warnings.push(
      `publication ${p.name} (publish_via_partition_root = true${p.columns ? `, columns ${p.columns.join(', ')}` : ''}${p.rowFilter !== null ? `, row filter ${p.rowFilter}` : ''}): ` +
        `at cutover the partitioned table takes ${t}'s place in it, in the same transaction, so its subscribers keep receiving every change ` +
        `under the name ${t} (the partitions' changes are published as the root's); the rollback gives the place back to the plain table`,
    );
  }
  return warnings;
}

/**
 * PostgreSQL <= 17: the parent's foreign key adopts the partitions' validated ones by dropping
 * their action triggers on the referenced table (RemoveTriggerById: ACCESS EXCLUSIVE there).
 */
function referencedWarnings(fks: Record<string, any>[]): string[] {
  return fks
    .filter((x) => x.direction === 'out')
    .map((f) => {
      const ref = referencedTable(f.definition);
      return (
        `foreign key ${f.name} references ${ref}: attaching it to the partitioned table takes ACCESS EXCLUSIVE on ${ref} ` +
        `(PostgreSQL drops the partitions' triggers there), held for milliseconds under lock_timeout (kept below deadlock_timeout) ` +
        `and retried with backoff; dropping a table with this foreign key at rollback or cleanup takes the same lock`
      );
    });
}

/** The partition key's first and last day, and whether some row has none. */
async function readKeyRange(
  db: pg.ClientBase,
  schema: string,
  spec: TableSpec,
  read: CatalogRead,
): Promise<{ min: string | null; max: string | null; has_nulls: boolean }> {
  const q = keyRangeSql(schema, spec.table, spec.partitionKey, { utc: read.keyType === 'timestamptz', notNull: read.key.notNull });
  return (await db.query(q)).rows[0];
}

/** The column the copy splits into ranges (src/copysql.ts), and its range; null for keyset batches. */
async function splitPlan(
  db: pg.ClientBase,
  schema: string,
  table: string,
  columns: ColumnInfo[],
  primaryKey: string[],
): Promise<Pick<TablePlan, 'splitColumn' | 'splitRange'>> {
  const splitColumn = (await splitsWell(db, schema, table, columns, primaryKey)) ? primaryKey[0] : null;
  if (!splitColumn) return { splitColumn, splitRange: null };
  const r = (await db.query(columnRangeSql(schema, table, splitColumn))).rows[0];
  return { splitColumn, splitRange: r.min !== null ? { min: r.min, max: r.max } : null };
}

/** The planner's estimate of the table's rows, counted when the table was never analyzed. */
async function estimateRows(db: pg.ClientBase, schema: string, table: string, reltuples: unknown): Promise<number> {
  const rows = Number(reltuples);
  return rows < 0 ? Number((await db.query(sql.rowCountSql(schema, table))).rows[0].n) : rows;
}

/** Inspects one table. Returns the plan, or the list of reasons it cannot be migrated. */
export async function inspectTable(db: pg.ClientBase, schema: string, spec: TableSpec, opts: InspectOpts): Promise<{ plan?: TablePlan; problems: string[] }> {
  const t = `${schema}.${spec.table}`;
  const { read, problems } = await readCatalog(db, schema, spec, opts.strategy);
  if (!read) return { problems };
  const { rel, columns, key, pk, fks } = read;
  // What reads the table itself, once the catalog allows it (a role without SELECT was refused above):
  // the row hash on the column types, and the rows violating NOT VALID constraints.
  problems.push(...(await hashColumns(db, t, schema, spec.table, columns)));
  const { notValid, problems: invalid } = await checkNotValid(db, schema, spec.table, rel.oid);
  problems.push(...invalid);
  if (problems.length) return { problems };

  const warnings: string[] = [...read.keyTriggers.warnings, ...carriedWarnings(t, read, notValid, opts.strategy), ...read.carried.lines];
  const range = await readKeyRange(db, schema, spec, read);
  if (range.has_nulls) {
    return {
      problems: [
        `${t}.${spec.partitionKey} holds NULLs; a row without a partition key has no partition. ` +
          `Fill or delete those rows (select * from ${t} where ${spec.partitionKey} is null) and start again`,
      ],
    };
  }
  warnings.push(...referencedWarnings(fks));

  const primaryKey = pk.columns;
  const partitionedKey = primaryKey.includes(spec.partitionKey) ? primaryKey : [...primaryKey, spec.partitionKey];
  if (!key.notNull) {
    // The partition key joins the primary key, which makes it NOT NULL on the partitioned table:
    // a NULL the plain table accepts would then fail, whatever partition (default too) exists.
    return {
      problems: [
        `${t}.${spec.partitionKey} is nullable; after the switchover it is part of the primary key (${partitionedKey.join(', ')}), ` +
          `which makes it NOT NULL, so an insert with a NULL key that the plain table accepts would fail (a default partition does not change that). ` +
          `Make it NOT NULL first (alter table ${sql.qname(schema, spec.table)} alter column ${sql.ident(spec.partitionKey)} set not null) and start again`,
      ],
    };
  }
  if (partitionedKey.length > primaryKey.length) {
    warnings.push(widenedKeyNote({ table: t, key: primaryKey, partitionKey: spec.partitionKey }));
    warnings.push(...(await applicationConflicts(db, { table: spec.table, key: primaryKey, constraint: pk.name })));
  }
  const split = await splitPlan(db, schema, spec.table, columns, primaryKey);
  const rowsEstimated = await estimateRows(db, schema, spec.table, rel.reltuples);
  const plan = await assemblePlan(db, schema, spec, opts, { read, range, notValid, warnings, partitionedKey, split, rowsEstimated });
  // A table another switchover holds is refused by claimTables (TableBusy, naming the holder);
  // its names exist because of that switchover.
  const conflicts = (await claimed(db, schema, spec.table))
    ? []
    : [...(await nameConflicts(db, plan, rel.oid, opts.backup ?? true)), ...(await matviewNameConflicts(db, plan))];
  if (conflicts.length) return { problems: conflicts };
  return { plan, problems: [] };
}

/** The table's plan from what preflight found (its sequences and column grants read here). */
async function assemblePlan(
  db: pg.ClientBase,
  schema: string,
  spec: TableSpec,
  opts: InspectOpts,
  found: {
    read: CatalogRead;
    range: { min: string | null; max: string | null };
    notValid: NonNullable<TablePlan['notValid']>;
    warnings: string[];
    partitionedKey: string[];
    split: Pick<TablePlan, 'splitColumn' | 'splitRange'>;
    rowsEstimated: number;
  },
): Promise<TablePlan> {
  const { rel, columns, keyType, pk, fks, carried } = found.read;
  const { range, notValid } = found;
  const names = namesFor(spec.table);
  names.pkConstraint = pk.name;
  names.pkTempConstraint = tempName(pk.name);
  const indexPlans = indexPlansFor(found.read.indexes, schema, names);
  const { partitions, coverage } = partitionsFor(spec, range, opts);
  return {
    schema,
    table: spec.table,
    partitionKey: spec.partitionKey,
    interval: spec.interval,
    keyType,
    names,
    columns,
    insertColumns: columns.filter((c) => !c.generated).map((c) => c.name),
    primaryKey: pk.columns,
    partitionedKey: found.partitionedKey,
    changeLog: true,
    splitColumn: found.split.splitColumn,
    splitRange: found.split.splitRange,
    rowsEstimated: found.rowsEstimated,
    dataRange: { min: range.min, max: range.max },
    partitions,
    defaultPartition: opts.defaultPartition,
    sumColumns: spec.sumColumns ?? defaultSumColumns(columns),
    indexes: indexPlans,
    sequences: (await db.query(sqlFile('catalog/sequences'), [rel.oid])).rows,
    foreignKeys: fks
      .filter((f) => f.direction === 'out')
      .map((f) => ({ name: f.name, definition: notValid.some((x) => x.name === f.name) ? String(f.definition).replace(/\s+NOT VALID$/, '') : f.definition })),
    notValid,
    acl: rel.acl ?? [],
    columnAcl: (await db.query(sqlFile('catalog/column_acl'), [rel.oid])).rows,
    owner: rel.owner,
    comment: rel.comment ?? null,
    storage: { table: rel.options, toast: rel.toast_options },
    warnings: found.warnings,
    coverage,
    ...carried.carried,
  };
}

async function claimed(db: pg.ClientBase, schema: string, table: string): Promise<boolean> {
  if (!(await db.query(sqlFile('catalog/relation_exists'), ['partition_switchover.claims'])).rows[0].ok) return false;
  const r = await db.query(sqlFile('bookkeeping/claim_holder'), [schema, table]);
  return r.rows.length > 0;
}

/** Names the switchover would create that already exist: each one refused, naming it. */
async function nameConflicts(db: pg.ClientBase, tp: TablePlan, oid: number, backup: boolean): Promise<string[]> {
  const want = plannedNames(tp, backup);
  const rows = (await db.query(sqlFile('catalog/name_conflicts'), [tp.schema, [...want.relations.keys()], want.functions, oid, want.triggers])).rows;
  return rows.map((r) => {
    const t = `${tp.schema}.${tp.table}`;
    if (r.what === 'relation') {
      return (
        `${tp.schema}.${r.name} already exists; the switchover of ${t} would create it as ${want.relations.get(r.name)}. ` +
        `Rename or drop it (if it is left from an earlier switchover, run the rollback workflow for that one), then start again`
      );
    }
    if (r.what === 'function')
      return `function ${tp.schema}.${r.name} already exists; the switchover of ${t} would replace it with its trigger function. Rename or drop it, then start again`;
    return `trigger ${r.name} already exists on ${t}; the switchover would replace it. If it is left from an earlier switchover, run the rollback workflow for that one, then start again`;
  });
}

/**
 * Whether the copy splits the first primary key column into ranges: an integer column that is
 * the whole key, or whose values are mostly distinct (at least half of a sample of 10,000 rows).
 * A composite key led by a column of few values (a tenant id) would make each range of
 * `batchSize` values a whole tenant; such tables are copied in keyset batches of the whole key.
 */
async function splitsWell(db: pg.ClientBase, schema: string, table: string, columns: ColumnInfo[], primaryKey: string[]): Promise<boolean> {
  if (!INTEGER_TYPES.has(columns.find((c) => c.name === primaryKey[0])!.type)) return false;
  if (primaryKey.length === 1) return true;
  const r = (await db.query(distinctSampleSql(schema, table, primaryKey[0]))).rows[0];
  return r.n === 0 || r.n_distinct >= r.n / 2;
}

/**
 * When a table's partitions take more than one transaction to create (and to drop at rollback):
 * how many, and why (the server's lock table). Nothing to say for one.
 */
async function lockTableNote(db: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const r = (await db.query(sqlFile('catalog/lock_settings'))).rows[0];
  const batch = partitionsPerTransaction(r.locks, relationsPerPartition(tp.indexes.length));
  const indexes = relationsPerPartition(tp.indexes.length) - 3;
  const n = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
  if (n <= batch) return [];
  const k = Math.ceil(n / batch);
  return [
    `${tp.schema}.${tp.table} gets ${n} partitions: prepare creates ${tp.names.partitioned} in one transaction, then its partitions ${batch} per transaction ` +
      `(${k} transactions), and a rollback drops them the same way before the table itself: each transaction locks every relation of its partitions ` +
      `(table, TOAST table and index, ${indexes} ${indexes === 1 ? 'index' : 'indexes'}) until it ends, and the server's lock table ` +
      `(max_locks_per_transaction ${r.locks} × (max_connections ${r.conns} + max_prepared_transactions ${r.prepared}) = ${r.locks * (r.conns + r.prepared)} locks) is shared by every session`,
  ];
}

/**
 * What gets slower: after the switchover a statement that names the table's key without the
 * partition key (`UPDATE ... WHERE id = $1`) cannot be pruned; it visits every partition and locks
 * each with its indexes, where the plain table took one relation and its indexes. Said with the
 * server's lock table, and, where pg_stat_statements is installed, the application's most
 * frequent statements on the table that do not name the partition key.
 */
async function lookupNote(db: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const r = (await db.query(sqlFile('catalog/lock_settings'))).rows[0];
  const n = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
  const perPartition = 1 + tp.indexes.length;
  const locks = n * perPartition + 1;
  const table = r.locks * (r.conns + r.prepared);
  const key = tp.primaryKey.join(', ');
  const frequent = await unprunedStatements(db, tp);
  return [
    `a statement on ${tp.schema}.${tp.table} that names (${key}) but not ${tp.partitionKey} (e.g. UPDATE ... WHERE ${tp.primaryKey[0]} = $1) visits all ${n} partitions after the switchover ` +
      `and takes about ${locks} locks (each partition and its ${tp.indexes.length} ${tp.indexes.length === 1 ? 'index' : 'indexes'}; on the plain table: ${perPartition}), ` +
      `against a lock table of ${table} shared by every session (max_locks_per_transaction ${r.locks} × (max_connections ${r.conns} + max_prepared_transactions ${r.prepared})): ` +
      `about ${Math.max(1, Math.floor(table / locks))} such statements at once fill it (out of shared memory). Add ${tp.partitionKey} to such statements where the application can` +
      (frequent === null
        ? ' (pg_stat_statements is not installed and loaded here: with it, the plan names the most frequent of them)'
        : frequent.length
          ? `; the most frequent here that do not name it: ${frequent.map((x) => `${x.calls} calls: ${x.query.slice(0, 120)}`).join('; ')}`
          : '; pg_stat_statements shows none here'),
  ];
}

/** Up to 5 of pg_stat_statements' most called statements that filter the table on its key but never name its partition key (calls, query); null without the extension. */
export async function unprunedStatements(db: pg.ClientBase, tp: TablePlan): Promise<{ calls: number; query: string }[] | null> {
  if (!(await db.query(sqlFile('catalog/stat_statements_visible'))).rows[0].ok) return null;
  try {
    const rows = (await db.query(sqlFile('catalog/unpruned_statements'), [tp.table, tp.partitionKey, tp.primaryKey[0]])).rows;
    return rows.map((x) => ({ calls: Number(x.calls), query: x.query as string }));
  } catch {
    // Installed but not loaded (shared_preload_libraries): nothing to read.
    return null;
  }
}

/**
 * Each strategy's part of the plan: what it adds to a table's plan (or refuses, returned as
 * problems), and its statements per stage for the dry-run report.
 */
const PLANS: Record<
  StrategyName,
  { complete(db: pg.ClientBase, tp: TablePlan, input: SwitchoverInput, today: string): Promise<string[]>; statements(tp: TablePlan): Record<string, string[]> }
> = {
  copy: {
    async complete(db, tp, input) {
      tp.warnings.push(verifyNote(input.verify), ...(await lockTableNote(db, tp)), ...(await lookupNote(db, tp)));
      // Foreign keys of other tables referencing it: carried through a key table (activities/keytable.ts).
      return planKeyTable(
        db,
        tp,
        input.tables.map((t) => t.table),
      );
    },
    statements: (tp) => ({ ...withKeyTableSql(tp, renderPlanSql(tp)), ...matviewPlanSql(tp) }),
  },
  // Its cutoff, indexes and partitions, and what only it refuses (activities/attachplan.ts).
  attach: { complete: planAttach, statements: (tp) => renderAttachSql(tp, sql.grantSql(tp)) },
};

export async function preflightPlan(db: pg.ClientBase, input: SwitchoverInput): Promise<Plan> {
  const today = (await db.query(sqlFile('catalog/today'))).rows[0].today as string;
  const tables: TablePlan[] = [];
  const problems: string[] = [];
  const refused: string[] = [];
  for (const spec of input.tables) {
    const r = await inspectTable(db, input.schema, spec, {
      today,
      premake: input.premake,
      defaultPartition: input.defaultPartition,
      backup: input.backup === 'table',
      strategy: input.strategy,
    });
    if (r.plan) r.problems.push(...(await PLANS[input.strategy].complete(db, r.plan, input, today)));
    problems.push(...r.problems);
    if (r.problems.length) refused.push(spec.table);
    else if (r.plan) tables.push(r.plan);
  }
  const missing = (await db.query(sqlFile('catalog/missing_roles'), [input.cutover?.protectRoles ?? []])).rows.map((x) => x.name as string);
  if (missing.length)
    problems.push(
      `cutover.protectRoles names ${missing.join(', ')}, which no role on this server is called; a session of it could not be protected. Correct the name`,
    );
  problems.push(...matviewsInSeveral(tables));
  if (problems.length) {
    throw fail('UnsupportedSchema', `preflight refused the switchover: ${problems.join('; ')}. Nothing was changed.`, {
      stage: 'preflight',
      tables: refused,
      problems,
    });
  }
  const planSql: Plan['sql'] = {};
  for (const tp of tables) planSql[tp.table] = PLANS[input.strategy].statements(tp);
  return { schema: input.schema, database: input.database, today, tables, sql: planSql };
}

/** Reads the catalog and returns the plan; refuses (non-retryable, naming why) what it cannot migrate. */
export async function preflight({ pools }: Deps, input: SwitchoverInput): Promise<Plan> {
  return stage('preflight', undefined, () => withClient(pools.get(input.database), (c) => preflightPlan(c, input)));
}

export const preflightActivities = (deps: Deps) => bindDeps(deps, { preflight });
