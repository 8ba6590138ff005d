// SQL of the restore from backup (activities/backup.ts restoreBackup): the rows of `<table>` put
// back to those of `<table>_backup` by key range in short transactions, then the keys the
// application wrote meanwhile (logged by partition_switchover.restore_log) under the table's lock.
import { columnType } from './sqlgen';
import { ident, list, literal, qname } from './sql';
import type { TablePlan } from './types';

export const RESTORE_TRIGGER = 'ps_restore_log';
const KEYS = 'partition_switchover.restore_keys';

const table = (tp: TablePlan) => qname(tp.schema, tp.table);
const backup = (tp: TablePlan) => qname(tp.schema, tp.names.backup);
const match = (tp: TablePlan, a: string, b: string) => tp.primaryKey.map((c) => `${a}.${ident(c)} = ${b}.${ident(c)}`).join(' AND ');

/** The logging trigger on the table: its key columns as arguments. */
export function restoreTriggerSql(tp: TablePlan): string {
  return (
    `CREATE TRIGGER ${ident(RESTORE_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON ${table(tp)} FOR EACH ROW ` +
    `EXECUTE FUNCTION partition_switchover.restore_log(${tp.primaryKey.map(literal).join(', ')})`
  );
}

/** The trigger off, once the rows are back. */
export function restoreTriggerOffSql(tp: TablePlan): string {
  return `DROP TRIGGER IF EXISTS ${ident(RESTORE_TRIGGER)} ON ${table(tp)}`;
}

/** The lock under which the last logged writes are put back: writers wait for it, readers do not. */
export function restoreLockSql(tp: TablePlan): string {
  return `LOCK TABLE ${table(tp)} IN SHARE ROW EXCLUSIVE MODE`;
}

/** An index on the backup's key, so that batches and the last writes find their rows. */
export function backupKeyIndexSql(tp: TablePlan, name: string): string {
  return `CREATE INDEX IF NOT EXISTS ${ident(name)} ON ${backup(tp)} (${list(tp.primaryKey)})`;
}

/** Rows of the backup (alias `b`) put into the table: inserted, or where the key is there, updated to the backup's. */
function upsert(tp: TablePlan, from: string): string {
  const cols = tp.insertColumns;
  const rest = cols.filter((c) => !tp.primaryKey.includes(c));
  const overriding = tp.columns.some((x) => x.identity === 'a') ? ' OVERRIDING SYSTEM VALUE' : '';
  return (
    `INSERT INTO ${table(tp)} AS t (${list(cols)})${overriding} SELECT ${list(cols, 'b.')} ${from} ON CONFLICT (${list(tp.primaryKey)}) ` +
    (rest.length ? `DO UPDATE SET ${rest.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}` : 'DO NOTHING')
  );
}

/**
 * One batch: the split column in [$1, $2) (NULL: open), or the whole table without one. Rows the
 * backup lacks are deleted, the backup's rows inserted or updated.
 */
export function restoreRangeSql(tp: TablePlan): { delete: string; upsert: string } {
  const s = tp.splitColumn;
  const range = (a: string) =>
    s ? ` AND ($1::${columnType(tp, s)} IS NULL OR ${a}.${ident(s)} >= $1) AND ($2::${columnType(tp, s)} IS NULL OR ${a}.${ident(s)} < $2)` : '';
  return {
    delete: `DELETE FROM ${table(tp)} t WHERE NOT EXISTS (SELECT 1 FROM ${backup(tp)} b WHERE ${match(tp, 'b', 't')})${range('t')}`,
    upsert: upsert(tp, `FROM ${backup(tp)} b WHERE true${range('b')}`),
  };
}

/** The upper bound of the batch from $1 (NULL: the start): the split column's value $2 rows of the backup on; none: the last batch. */
export function restoreNextBoundSql(tp: TablePlan): string {
  const s = ident(tp.splitColumn!);
  return `SELECT b.${s}::text AS bound FROM ${backup(tp)} b WHERE $1::${columnType(tp, tp.splitColumn!)} IS NULL OR b.${s} >= $1 ORDER BY b.${s} OFFSET $2 LIMIT 1`;
}

/** The keys the application wrote, logged for table $1 up to seq $2, put back as the backup has them; then forgotten. */
export function restoreLoggedSql(tp: TablePlan): { delete: string; upsert: string; forget: string } {
  const keys =
    `WITH k AS (SELECT DISTINCT ${tp.primaryKey.map((c, i) => `(key::jsonb ->> ${i})::${columnType(tp, c)} AS ${ident(c)}`).join(', ')} ` +
    `FROM ${KEYS} WHERE table_oid = $1::regclass AND seq <= $2) `;
  return {
    delete: `${keys}DELETE FROM ${table(tp)} t USING k WHERE ${match(tp, 't', 'k')} AND NOT EXISTS (SELECT 1 FROM ${backup(tp)} b WHERE ${match(tp, 'b', 't')})`,
    upsert: keys + upsert(tp, `FROM ${backup(tp)} b JOIN k ON ${match(tp, 'b', 'k')}`),
    forget: `DELETE FROM ${KEYS} WHERE table_oid = $1::regclass AND seq <= $2`,
  };
}
