// Pure builders of the plan's statements: what each stage will run (the dry-run report), prepare's
// statements, and the names and DDL preflight puts into the plan. Identifiers through src/sql.ts.
import { fitName } from './partitions';
import * as sql from './sqlgen';
import { deferredIndex, indexOn, rangeBatchSql } from './copysql';
import type { TablePlan } from './types';

/** `<index>_ps`, hashed when the name would not fit (two long names must not collide). */
export function tempName(name: string): string {
  return fitName(name, '_ps');
}

/** `ALTER TABLE schema.name OWNER TO owner`. */
export function ownerSql(schema: string, name: string, owner: string): string {
  return `ALTER TABLE ${sql.qname(schema, name)} OWNER TO ${sql.ident(owner)}`;
}

/** A constraint added to `schema.table` by its definition (pg_get_constraintdef's text). */
export function addConstraintSql(schema: string, table: string, name: string, definition: string): string {
  return `ALTER TABLE ${sql.qname(schema, table)} ADD CONSTRAINT ${sql.ident(name)} ${definition}`;
}

/** The statements each stage will run, per table (the dry-run report). */
export function renderPlanSql(tp: TablePlan): Record<string, string[]> {
  return {
    backup: [sql.backupSql(tp), ...sql.backupAccessSql(tp)],
    prepare: prepareSql(tp),
    triggers: sql.dualWriteSql(tp),
    copy: [tp.splitColumn ? rangeBatchSql(tp, { lock: false }) : sql.copyBatchSql(tp, { withCursor: true, lo: false, hi: false })],
    index: [
      ...tp.indexes.filter(deferredIndex).map((i) => indexOn(i, { name: i.tempName, on: sql.qname(tp.schema, tp.names.partitioned) })),
      ...tp.foreignKeys.map((f) => addConstraintSql(tp.schema, tp.names.partitioned, f.name, f.definition)),
    ],
    verify: [sql.checksumByRangeSql(tp, tp.table), sql.checksumByRangeSql(tp, tp.names.partitioned)],
    cutover: [...sql.lockSql(tp, [tp.table, tp.names.partitioned]), ...sql.cutoverSql(tp)],
    cleanup: [...sql.cleanupSql(tp), sql.dropTableSql(tp, tp.names.legacy), sql.dropTableSql(tp, tp.names.backup)],
  };
}

/**
 * Prepare's statements: the partitioned table with its keys, owner, grants, comment and policies
 * (`head`, one transaction), then each partition with its owner (`partitions`, in transactions
 * sized to the server's lock table: activities/prepare.ts). A partition made after the keys gets
 * its indexes from the parent's, under the same names as when the keys come last.
 */
export function prepareSteps(tp: TablePlan, opts: { guards?: boolean } = {}): { head: string[]; partitions: { name: string; sql: string[] }[] } {
  const part = sql.qname(tp.schema, tp.names.partitioned);
  const owner = (name: string) => (tp.owner ? [ownerSql(tp.schema, name, tp.owner)] : []);
  // A statement on one partition is recorded like one on the parent (plans with the change log; the
  // parent's comes with the triggers). Not listed in the dry-run's statements: two per partition.
  const guard = (name: string) => (opts.guards && tp.changeLog && !tp.attach ? sql.directWriteGuardSql(tp, name) : []);
  return {
    head: [
      sql.createPartitionedTableSql(tp),
      ...owner(tp.names.partitioned),
      sql.primaryKeySql(tp),
      // Plain secondary indexes are built after the copy (activities/indexes.ts), not here.
      ...tp.indexes.filter((i) => !i.isPrimary && !deferredIndex(i)).map((i) => i.createSql),
      // Foreign keys too: checking each copied row by trigger costs more than the copy itself;
      // validated per partition after it instead (activities/indexes.ts).
      ...sql.grantSql(tp),
      ...(tp.comment !== null ? [`COMMENT ON TABLE ${part} IS ${sql.literal(tp.comment)}`] : []),
      ...(tp.policies ?? []),
    ],
    partitions: [
      ...tp.partitions.map((p) => ({
        name: sql.partitionNameFor(tp, p),
        sql: [sql.partitionSql(tp, tp.names.partitioned, p, { copied: true }), ...owner(sql.partitionNameFor(tp, p)), ...guard(sql.partitionNameFor(tp, p))],
      })),
      ...(tp.defaultPartition
        ? [
            {
              name: sql.defaultPartitionName(tp),
              sql: [
                sql.defaultPartitionSql(tp, tp.names.partitioned, { copied: true }),
                ...owner(sql.defaultPartitionName(tp)),
                ...guard(sql.defaultPartitionName(tp)),
              ],
            },
          ]
        : []),
    ],
  };
}

export function prepareSql(tp: TablePlan): string[] {
  const { head, partitions } = prepareSteps(tp);
  return [...head, ...partitions.flatMap((p) => p.sql)];
}
