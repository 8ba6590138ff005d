// The rehearsal's own test rows ("marked rows"): clones of a real row with a negative id far
// below any sequence (the marker) and a partition key in the last premade partitions, where no
// application row lives yet. They only ever exist inside transactions that are rolled back;
// the final check still sweeps the marker range in case one was ever committed.
import type pg from 'pg';
import { sampleRowSql } from '../src/markedsql';
import type { TablePlan } from '../src/types';

/** The first row by primary key (its key values and partition key, as text), or null for an empty table. */
export async function sampleRow(c: pg.ClientBase, tp: TablePlan): Promise<{ key: string[]; partitionKey: string } | null> {
  const r = await c.query({ text: sampleRowSql(tp), rowMode: 'array' });
  if (!r.rows.length) return null;
  const row = r.rows[0] as string[];
  return { key: row.slice(0, tp.primaryKey.length), partitionKey: row[tp.primaryKey.length] };
}
