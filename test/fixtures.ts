// A revenues-like table plan for the exact-SQL unit tests (no database needed).
import { namesFor } from '../src/preflightchecks';
import type { ColumnInfo, TablePlan } from '../src/types';

export const col = (name: string, type: string): ColumnInfo => ({ name, type, notNull: true, generated: false, identity: '' });

/** id bigint, occurred_at timestamptz and `third`, keyed by id, partitioned monthly by occurred_at. */
export function revenuesPlan(third: ColumnInfo, overrides: Partial<TablePlan> = {}): TablePlan {
  return {
    schema: 'public',
    table: 'revenues',
    partitionKey: 'occurred_at',
    interval: 'month',
    keyType: 'timestamptz',
    names: { ...namesFor('revenues'), pkConstraint: 'revenues_pkey', pkTempConstraint: 'revenues_pkey_ps' },
    columns: [col('id', 'bigint'), col('occurred_at', 'timestamp with time zone'), third],
    insertColumns: ['id', 'occurred_at', third.name],
    primaryKey: ['id'],
    partitionedKey: ['id', 'occurred_at'],
    splitColumn: 'id',
    splitRange: { min: '1', max: '100' },
    rowsEstimated: 100,
    dataRange: { min: '2024-01-01', max: '2024-02-10' },
    partitions: [{ suffix: 'p202401', from: '2024-01-01', to: '2024-02-01' }],
    defaultPartition: false,
    sumColumns: [],
    indexes: [{ name: 'revenues_pkey', tempName: 'revenues_pkey_ps', createSql: '', isPrimary: true }],
    sequences: [],
    foreignKeys: [],
    acl: [],
    comment: null,
    warnings: [],
    ...overrides,
  };
}
