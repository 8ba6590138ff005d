// The rows written during a switchover: the dual-write trigger logs every key it writes
// (src/sqlgen.ts changedKeyLog). The copy's re-check repairs, and the incremental verification
// compares, exactly those rows, so both cost what the application wrote, not the table's size.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { sqlFile } from '../src/db';
import { keepAlive } from './context';
import { lockedTx } from './locks';
import { changedKeysSql, forgetChangedKeysSql, keysCompareSql } from '../src/copysql';
import { ident, qname } from '../src/sqlgen';
import { ourTriggers } from '../src/ourtriggers';
import type { TablePlan } from '../src/types';

/** Keys read from the log per comparison statement. */
export const KEYS_PER_PAGE = 5000;

/** The page size in force: PS_CHANGE_LOG_PAGE_KEYS sets a smaller one (tests put page ends between an id's keys). */
function pageKeys(): number {
  const n = Number(process.env.PS_CHANGE_LOG_PAGE_KEYS);
  return Number.isInteger(n) && n > 0 ? n : KEYS_PER_PAGE;
}

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
export async function compareLogged(c: pg.ClientBase, tp: TablePlan, fromSeq = '0', pageSize = pageKeys()): Promise<Compared> {
  const out: Compared = { keys: 0, legacyRows: 0, partitionedRows: 0, legacyHash: 0n, partitionedHash: 0n, differ: [], differKeys: [], seq: fromSeq };
  const table = qname(tp.schema, tp.table);
  const seen = new Set<string>();
  for (;;) {
    const page = (await c.query(changedKeysSql(), [table, out.seq, pageSize])).rows as { pos: string; key: string }[];
    if (!page.length) return out;
    out.seq = page[page.length - 1].pos;
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
    // An id on several pages is compared on each; it is named once.
    for (const k of r.differ.filter((x) => !seen.has(x))) {
      seen.add(k);
      out.differ.push(JSON.parse(k) as string[]);
    }
    out.differKeys.push(...r.differ_keys);
    Context.current().heartbeat({ comparedKeys: out.keys, seq: out.seq });
    if (page.length < pageSize) return out;
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

/**
 * Forgets the entries a comparison in a repeatable-read transaction on `c` compared (up to `seq`,
 * as its snapshot saw them; entries logged since stay for the next one), so the log holds only
 * what no comparison has read yet: it grows with what is written between two comparisons, not
 * with the time approval takes.
 */
export async function forgetCompared(c: pg.ClientBase, tp: TablePlan, seq: string): Promise<number> {
  if (seq === '0') return 0;
  return (await c.query(sqlFile('bookkeeping/changed_keys_forget_compared'), [qname(tp.schema, tp.table), seq])).rowCount ?? 0;
}

/** Entries of the table in the change log now. */
export async function loggedCount(c: pg.ClientBase, tp: TablePlan): Promise<number> {
  return Number((await c.query(sqlFile('bookkeeping/changed_keys_count'), [qname(tp.schema, tp.table)])).rows[0].n);
}

/** What may have been written behind the dual-write trigger, each as a phrase; `marks` is the last direct write read. */
export interface Behind {
  reasons: string[];
  lastDirectWrite: string;
  /** The trigger's pg_trigger xmin as read, when it differs from the baseline. */
  triggerNow: string | null;
}

/**
 * Writes the change log cannot show, found without reading either table: the dual-write trigger
 * disabled, re-enabled or replaced since it was installed (or last verified), so writes may have
 * passed it; statements that wrote the partitioned copy straight (recorded by its statement
 * trigger). Writers running as session_replication_role = replica go through the trigger (it is
 * enabled ALWAYS). Plans installed before these records existed have none to read: nothing found.
 */
export async function behindTriggers(c: pg.ClientBase, tp: TablePlan): Promise<Behind> {
  const out: Behind = { reasons: [], lastDirectWrite: '0', triggerNow: null };
  const shown = `${tp.schema}.${tp.table}`;
  try {
    const t = (await c.query(sqlFile('bookkeeping/sync_baseline_check'), [qname(tp.schema, tp.table), tp.names.syncTrigger])).rows[0];
    if (t?.baseline) {
      if (!t.current) out.reasons.push(`the dual-write trigger ${ident(tp.names.syncTrigger)} on ${shown} was dropped`);
      else if (t.current !== t.baseline) {
        out.reasons.push(
          `the dual-write trigger ${ident(tp.names.syncTrigger)} on ${shown} was disabled, enabled or replaced since it was installed ` +
            `(it is ${t.enabled === 'A' ? 'enabled always' : t.enabled === 'D' ? 'disabled' : t.enabled === 'O' ? 'enabled for origin sessions only' : `tgenabled=${t.enabled}`} now); writes made meanwhile may not have reached ${tp.names.partitioned}`,
        );
      }
      if (t.current && t.current !== t.baseline) out.triggerNow = t.current;
    }
    const d = (await c.query(sqlFile('bookkeeping/direct_writes'), [qname(tp.schema, tp.names.partitioned)])).rows[0];
    if (d.n > 0) {
      out.reasons.push(
        `${d.n} statement${d.n === 1 ? '' : 's'} wrote ${tp.names.partitioned} directly, not through the dual-write trigger (${(d.first as string[]).join('; ')})`,
      );
      out.lastDirectWrite = d.last;
    }
  } catch (err) {
    // Bookkeeping from before these records existed (the switchover started under an earlier version).
    if ((err as { code?: string }).code !== '42P01') throw err;
  }
  return out;
}

/**
 * Triggers not ours on the partitioned copy or its partitions (a tool's event trigger can add
 * them as prepare creates the tables): they fire as the copy writes the rows, which the change
 * log does not hold, and may change them. Verification then compares every row.
 */
export async function foreignTriggers(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const found = (await c.query(sqlFile('catalog/foreign_triggers'), [qname(tp.schema, tp.names.partitioned), ourTriggers(tp.names)])).rows.map(
    (r) => r.trigger as string,
  );
  if (!found.length) return [];
  return [
    `trigger${found.length === 1 ? '' : 's'} not made by the switchover on ${tp.names.partitioned} or its partitions ` +
      `(${found.slice(0, 5).join(', ')}${found.length > 5 ? ` and ${found.length - 5} more` : ''}) fire as the copy writes rows the change log does not hold, and may change them`,
  ];
}

/** After every row was compared equal despite `b`: the trigger as it is now is the baseline, the direct writes are accounted for. */
export async function acceptBehind(c: pg.ClientBase, tp: TablePlan, b: Behind): Promise<void> {
  if (b.triggerNow) await c.query(sqlFile('bookkeeping/sync_baseline_accept'), [qname(tp.schema, tp.table), tp.names.syncTrigger, b.triggerNow]);
  if (b.lastDirectWrite !== '0') await c.query(sqlFile('bookkeeping/direct_writes_forget'), [qname(tp.schema, tp.names.partitioned), b.lastDirectWrite]);
}

export interface Written {
  /** What differs or may have passed the triggers, as phrases; empty: all equal. */
  changes: string[];
  /** Keys compared. */
  keys: number;
  /** Entries of the table left in the change log (logged since the comparison's snapshot, or kept because something differs). */
  logRows: number;
}

/**
 * The rows written since verification (the change log's entries no comparison has read yet)
 * compared in one snapshot, then forgotten, and what may have passed the triggers since: what it
 * finds, each as a phrase (for a refusal), and the log's entries left. Costs what was written
 * since, never the table's size. Null when a table is gone (a cutover raced us).
 */
export async function compareWritten(pool: pg.Pool, tp: TablePlan, lockTimeoutMs: number): Promise<Written | null> {
  try {
    const { value } = await lockedTx(
      pool,
      { what: `comparison of ${tp.schema}.${tp.table} since verification`, lockTimeoutMs, begin: sqlFile('session/begin_repeatable_read') },
      async (tx) => {
        // Lock waits (ACCESS SHARE, behind someone's DDL) within the budget; the reads themselves unbounded.
        await tx.long(sqlFile('session/utc'));
        const logged = await keepAlive(() => compareLogged(tx.client, tp));
        const behind = await behindTriggers(tx.client, tp);
        const changes = [...behind.reasons];
        if (logged.differ.length) {
          changes.push(
            `rows written since verification differ between ${tp.table} and ${tp.names.partitioned}: ` +
              `ids ${logged.differ
                .slice(0, 10)
                .map((k) => k.join(','))
                .join('; ')}${logged.differ.length > 10 ? ` and ${logged.differ.length - 10} more` : ''} (${logged.keys} logged keys compared)`,
          );
        }
        if (!changes.length) await forgetCompared(tx.client, tp, logged.seq);
        return { changes, keys: logged.keys, logRows: await loggedCount(tx.client, tp) };
      },
    );
    return value;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return null;
    throw err;
  }
}
