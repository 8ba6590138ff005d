// Preflight's pure part (activities/preflight.ts reads the catalog): the names and index plans a
// switchover derives from the table's, and the reasons found in what the catalog returned that a
// table cannot be migrated, each a message naming the fix. No database.
import { coverageLines, fitName, partitionName, partitionRanges, withOpenEnds } from './partitions';
import type { SwitchoverInput, TableSpec } from './input';
import * as sql from './sqlgen';
import { createIndexSql } from './copysql';
import { addConstraintSql, tempName } from './plansql';
import type { ColumnInfo, IndexPlan, KeyType, TableNames, TablePlan } from './types';

export const KEY_TYPES: Record<string, KeyType> = {
  date: 'date',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
};
export const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);
const MONEY_NAME = /(amount|cents|balance|total|price|cost|opening|closing)/i;

/** Names derived from the table's; one that would not fit 63 bytes gets a hash (src/partitions.ts fitName). */
export function namesFor(table: string): TableNames {
  const short = (suffix: string) => fitName(table, suffix);
  return {
    partitioned: short('_partitioned'),
    legacy: short('_legacy'),
    backup: short('_backup'),
    syncFunction: short('_ps_sync'),
    syncTrigger: 'ps_dual_write',
    mirrorFunction: short('_ps_mirror'),
    mirrorTrigger: 'ps_mirror_to_legacy',
    guardFunction: short('_ps_guard'),
    pkConstraint: '',
    pkTempConstraint: '',
    defaultPartition: short('_default'),
  };
}

export function defaultSumColumns(columns: ColumnInfo[]): string[] {
  return columns.filter((c) => c.type.startsWith('numeric') || c.type === 'money' || (INTEGER_TYPES.has(c.type) && MONEY_NAME.test(c.name))).map((c) => c.name);
}

export interface IndexRow {
  name: string;
  is_primary: boolean;
  is_unique: boolean;
  constraint_type: string | null;
  constraint_def: string | null;
  columns: string[];
  has_expressions: boolean;
  using_clause: string;
}

/** `NEW.<key> :=` or `NEW."<key>" =` as a statement of a trigger function's source (a read, not a parse). */
export function assignsKey(source: string, key: string): boolean {
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const name = /^[a-z_][a-z0-9_$]*$/.test(key) ? `(?:${esc(key)}|"${esc(key)}")` : `"${esc(key.replace(/"/g, '""'))}"`;
  // At a statement's start: `IF NEW.at = OLD.at` compares, it does not assign.
  return new RegExp(`(?:^|;|\\bthen\\b|\\belse\\b|\\bbegin\\b|\\bloop\\b)\\s*new\\s*\\.\\s*${name}\\s*:?=(?!=)`, 'im').test(source);
}

/** The plan's line on which verification runs before approval. */
export function verifyNote(mode: SwitchoverInput['verify']): string {
  return mode === 'full'
    ? 'verification "full": counts, sums and the hash of every row of both tables (the slowest; catches any difference, also one made behind the triggers)'
    : 'verification "incremental": row counts of both tables in one snapshot, and every row written during the switchover compared row by row; ' +
        'a row updated behind the triggers (session_replication_role = replica, a disabled trigger) is not caught: "verify": "full" re-reads every row';
}

/** The table's catalog row (sql/catalog/table.sql). */
export type TableRow = Record<string, any>;

/**
 * The new table gets the legacy table's owner (and so can own its serial sequence): the worker's
 * role must be able to give it away.
 */
export function ownerProblems(rel: TableRow, t: string, schema: string): string[] {
  if (rel.superuser || rel.owner === rel.me) return [];
  if (!rel.acts_as_owner) {
    return [
      `${t} is owned by role ${rel.owner}, and the worker's role ${rel.me} is neither superuser nor a member of it, ` +
        `so it cannot give the new table the same owner; run GRANT ${sql.ident(rel.owner)} TO ${sql.ident(rel.me)} and start again`,
    ];
  }
  if (!rel.owner_can_create) {
    return [
      `${t} is owned by role ${rel.owner}, which has no CREATE privilege on schema ${schema}, so the new table cannot be given to it; ` +
        `run GRANT CREATE ON SCHEMA ${sql.ident(schema)} TO ${sql.ident(rel.owner)} and start again`,
    ];
  }
  return [];
}

/** The partition key's column and its type, with what is wrong with it. */
export function partitionKeyOf(columns: ColumnInfo[], spec: TableSpec, t: string): { key?: ColumnInfo; keyType?: KeyType; problems: string[] } {
  const key = columns.find((c) => c.name === spec.partitionKey);
  // format_type() spells a precision inside the name (`timestamp(3) with time zone`): the type is the same.
  const keyType = key ? KEY_TYPES[key.type.replace(/\(\d+\)/, '')] : undefined;
  if (!key) return { problems: [`partition key column "${spec.partitionKey}" does not exist in ${t}`] };
  if (!keyType) return { key, problems: [`partition key ${t}.${spec.partitionKey} is of type ${key.type}; it must be date, timestamp or timestamptz`] };
  return { key, keyType, problems: [] };
}

/** The primary key, and the unique indexes and exclusion constraints a partitioned table cannot have. */
export function indexProblems(indexes: IndexRow[], t: string, partitionKey: string): string[] {
  const problems: string[] = [];
  const pk = indexes.find((i) => i.is_primary);
  if (!pk) problems.push(`${t} has no primary key; add one (the copy, triggers and verification match rows by it)`);
  else if (pk.has_expressions) problems.push(`${t}'s primary key uses expressions, which cannot be carried over`);
  for (const i of indexes) {
    if (i.is_primary) continue;
    if (i.is_unique && !i.columns.includes(partitionKey)) {
      problems.push(
        `unique index ${i.name} on ${t} (${i.columns.join(', ') || 'expressions'}) does not include the partition key ` +
          `${partitionKey}; PostgreSQL cannot enforce it on a partitioned table. Add ${partitionKey} to it or drop it first`,
      );
    }
    if (i.constraint_type === 'x') problems.push(`exclusion constraint ${i.name} on ${t} cannot be carried onto a partitioned table`);
  }
  return problems;
}

/** Foreign keys of other tables that reference this one: refused by the attach strategy (the copy strategy carries them: activities/keytable.ts). */
export function referencingProblems(fks: Record<string, any>[], t: string, partitionKey: string, strategy?: SwitchoverInput['strategy']): string[] {
  return fks
    .filter((f) => f.direction === 'in' && strategy === 'attach')
    .map(
      (fk) =>
        `foreign key ${fk.name} on ${fk.from_table} references ${t}; the attach strategy replaces ${t}'s primary key by one that ` +
        `includes ${partitionKey} and turns ${t} into a partition, which a foreign key cannot reference. Drop the foreign key before the switchover and re-create it afterwards, ` +
        `or use the copy strategy ("strategy": "copy"), which carries it`,
    );
}

/** The plan of each index: its temporary and legacy names, and the statement that makes it on the partitioned copy. */
export function indexPlansFor(indexes: IndexRow[], schema: string, names: TableNames): IndexPlan[] {
  return indexes.map((i) => {
    const plan = { name: i.name, tempName: tempName(i.name), legacyName: fitName(i.name, '_legacy'), isPrimary: i.is_primary };
    if (i.is_primary) return { ...plan, createSql: '' };
    if (i.constraint_type === 'u') {
      return { ...plan, createSql: addConstraintSql(schema, names.partitioned, plan.tempName, i.constraint_def!) };
    }
    const index = { unique: i.is_unique, using: `USING ${i.using_clause}` };
    return { ...plan, index, createSql: createIndexSql(index, { name: plan.tempName, on: sql.qname(schema, names.partitioned) }) };
  });
}

export type InspectOpts = { today: string; premake: number; defaultPartition: boolean; backup?: boolean; strategy?: SwitchoverInput['strategy'] };

/** The partitions that cover the data's range through `premake` periods ahead, with open ends, and the plan's coverage lines. */
export function partitionsFor(spec: TableSpec, range: { min: string | null; max: string | null }, opts: InspectOpts) {
  const partitions = withOpenEnds(partitionRanges({ min: range.min, max: range.max, today: opts.today, interval: spec.interval, premake: opts.premake })).map(
    (p) => ({ ...p, name: partitionName(spec.table, p.suffix) }),
  );
  const coverage = coverageLines({
    table: spec.table,
    partitionKey: spec.partitionKey,
    interval: spec.interval,
    partitions,
    dataRange: { min: range.min, max: range.max },
    premake: opts.premake,
  });
  return { partitions, coverage };
}

/** Every name the switchover would create in the schema, with what it is for. */
export function plannedNames(tp: TablePlan, backup: boolean): { relations: Map<string, string>; functions: string[]; triggers: string[] } {
  const relations = new Map<string, string>([
    [tp.names.partitioned, 'the partitioned copy'],
    [tp.names.legacy, 'the old table after cutover'],
    ...(backup ? [[tp.names.backup, 'the backup ("backup": "table")'] as [string, string]] : []),
    ...tp.partitions.map((p) => [sql.partitionNameFor(tp, p), `partition ${p.from}..${p.to}`] as [string, string]),
    ...(tp.defaultPartition ? [[sql.defaultPartitionName(tp), 'the default partition'] as [string, string]] : []),
    ...tp.indexes.flatMap((i) => [
      [i.tempName, `index ${i.name} on the partitioned copy`] as [string, string],
      [i.legacyName ?? '', `index ${i.name} of the old table after cutover`] as [string, string],
    ]),
    ...(tp.identities ?? []).map((i) => [i.legacySequence, `sequence ${i.sequence} of the old table after cutover`] as [string, string]),
  ]);
  relations.delete('');
  return {
    relations,
    functions: [tp.names.syncFunction, tp.names.mirrorFunction, ...(tp.names.guardFunction ? [tp.names.guardFunction] : [])],
    triggers: [tp.names.syncTrigger, tp.names.mirrorTrigger, sql.TRUNCATE_GUARD_TRIGGER],
  };
}
