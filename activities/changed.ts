// The rows written during a switchover: the dual-write trigger logs every key it writes
// (src/sqlgen.ts changedKeyLog). The copy's re-check repairs, and the incremental verification
// compares, exactly those rows, so both cost what the application wrote, not the table's size.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { changedKeysSql, forgetChangedKeysSql, keysCompareSql } from '../src/copysql';
import { qname } from '../src/sqlgen';
import type { TablePlan } from '../src/types';

/** Keys read from the log per comparison statement. */
export const KEYS_PER_PAGE = 5000;

export interface Compared {
  /** Distinct keys compared (a key logged on several pages counts once per page). */
  keys: number;
  legacyRows: number;
  partitionedRows: number;
  /** Sum over pages of each side's row hashes (equal when every compared row is). */
  legacyHash: bigint;
  partitionedHash: bigint;
  /** Ids whose rows differ (the table's key, as arrays of text). */
  differ: string[][];
  /** The logged keys of those ids (json text, as logged): what compares them again. */
  differKeys: string[];
  /** Log position reached. */
  seq: string;
}

/**
 * Compares, page by page on `c` (in whatever transaction it is in), the rows of every key logged
 * after `fromSeq`. Each page is one statement: one snapshot per page, or the caller's snapshot
 * in a repeatable-read transaction.
 */
export async function compareLogged(c: pg.ClientBase, tp: TablePlan, fromSeq = '0'): Promise<Compared> {
  const out: Compared = { keys: 0, legacyRows: 0, partitionedRows: 0, legacyHash: 0n, partitionedHash: 0n, differ: [], differKeys: [], seq: fromSeq };
  const table = qname(tp.schema, tp.table);
  for (;;) {
    const page = (await c.query(changedKeysSql(), [table, out.seq, KEYS_PER_PAGE])).rows as { seq: string; key: string }[];
    if (!page.length) return out;
    out.seq = page[page.length - 1].seq;
    const keys = [...new Set(page.map((r) => r.key))];
    const r = (await c.query(keysCompareSql(tp), [`[${keys.join(',')}]`])).rows[0] as {
      legacy_rows: number;
      legacy_hash: string;
      partitioned_rows: number;
      partitioned_hash: string;
      differ: string[];
      differ_keys: string[];
    };
    out.keys += keys.length;
    out.legacyRows += r.legacy_rows;
    out.partitionedRows += r.partitioned_rows;
    out.legacyHash += BigInt(r.legacy_hash);
    out.partitionedHash += BigInt(r.partitioned_hash);
    out.differ.push(...r.differ.map((k) => JSON.parse(k) as string[]));
    out.differKeys.push(...r.differ_keys);
    Context.current().heartbeat({ comparedKeys: out.keys, seq: out.seq });
    if (page.length < KEYS_PER_PAGE) return out;
  }
}

/**
 * Forgets the table's logged keys once nothing compares them any more (after cutover, rollback or
 * cleanup), under the table's name or its legacy name, whichever is the logged table now.
 */
export async function forgetLogged(c: pg.ClientBase, tp: TablePlan): Promise<number> {
  try {
    const r = await c.query(forgetChangedKeysSql(), [[qname(tp.schema, tp.table), qname(tp.schema, tp.names.legacy)]]);
    return r.rowCount ?? 0;
  } catch (err) {
    // Bookkeeping from before the log existed (a switchover claimed by an earlier version).
    if ((err as { code?: string }).code === '42P01') return 0;
    throw err;
  }
}
