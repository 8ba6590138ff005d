// The copy's re-check (copy mode "recheck"): the copy ran without row locks, so a batch could
// race a writer (a row deleted or moved between the batch's snapshot and its insert comes back;
// src/copysql.ts says why other changes cannot be lost). Once every transaction that overlapped
// the copy has ended, both tables' keys are compared chunk by chunk in one snapshot (the
// dual-write trigger changes both in one transaction, so only the copy's mistakes differ), and
// each differing row is rewritten from the legacy table under a row lock. Idempotent: a retry compares again and finds nothing left to repair.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { inTx, sqlFile, withClient, withTx } from '../src/db';
import { OUR_WRITE_SQL } from '../src/sqlgen';
import { fail } from '../src/errors';
import { chunkBounds, chunkDiffSql, chunkHashSql, keysCompareSql, repairSql, setSnapshotSql } from '../src/copysql';
import { compareLogged } from './changed';
import { blockedBy, lockedTx } from './locks';
import type { RecheckResult, TablePlan } from '../src/types';
import { audit, bindDeps, Deps, keepAlive, stage, throwIfCancelled } from './context';

const MAX_ROUNDS = 10;
const KEYS_PER_ROUND = 50000;
/** Index lookups per repair transaction (a key without the partition key is looked up in every partition): well inside the lock budget. */
const LOOKUPS_PER_REPAIR = 40_000;

/** Keys per repair transaction: 1,000, fewer as partitions grow (at least 20). */
export function keysPerRepair(partitions: number): number {
  return Math.min(1000, Math.max(20, Math.floor(LOOKUPS_PER_REPAIR / Math.max(1, partitions))));
}

/**
 * Waits until every transaction of this database that holds an xid now has ended (as CREATE
 * INDEX CONCURRENTLY waits): after it, any write that raced a copy batch is committed or gone.
 */
export async function waitForOlderTransactions(c: pg.ClientBase): Promise<number> {
  const t0 = Date.now();
  const running = sqlFile('catalog/xid_holders');
  const xids = (await c.query(running)).rows.map((r) => r.xid as string);
  while (xids.length) {
    const still = new Set((await c.query(running)).rows.map((r) => r.xid as string));
    const left = xids.filter((x) => still.has(x)).length;
    if (left === 0) break;
    Context.current().heartbeat({ waitingFor: `${left} transactions older than the re-check` });
    await Context.current().sleep(100);
  }
  return Date.now() - t0;
}

/** Runs `fn` on another connection of `pool` inside the exported snapshot `snapshot` (read only). */
export async function inSnapshot<T>(pool: pg.Pool, snapshot: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return withTx(
    pool,
    async (c) => {
      await c.query(setSnapshotSql(snapshot));
      await c.query(sqlFile('session/no_jit')); // compiling costs more than it saves on these scans (measured)
      return fn(c);
    },
    sqlFile('session/begin_repeatable_read_only'),
  );
}

/** Chunk → "rows:hash" of one side. */
async function sideHashes(c: pg.ClientBase, sql: string): Promise<Map<string, string>> {
  const rows = (await c.query(sql)).rows as { chunk: string; rows: string; hash: string }[];
  return new Map(rows.map((r) => [r.chunk, `${r.rows}:${r.hash}`]));
}

export async function copyRecheck({ pools }: Deps, database: string, tp: TablePlan, opts: { chunkRows?: number } = {}): Promise<RecheckResult> {
  const chunkRows = opts.chunkRows ?? 10000;
  return stage('copy', tp.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const waitedMs = await waitForOlderTransactions(c);
      const r = tp.changeLog ? { chunks: 0, ...(await recheckLogged(c, tp, pools.get(database))) } : await recheckChunks(pools.get(database), c, tp, chunkRows);
      const result: RecheckResult = { table: tp.table, ...r, waitedMs, ms: Date.now() - t0 };
      await audit(c, { schema: tp.schema, table: tp.table, stage: 'COPY-RECHECK', ms: result.ms, details: result });
      return result;
    }),
  );
}

export const recheckActivities = (deps: Deps) => bindDeps(deps, { copyRecheck });

/** The re-check gives up: repairs do not converge (a writer outside the triggers?); `which` names the first differing chunks or keys. */
function stillDiffering(tp: TablePlan, which: string) {
  return fail(
    'ParityMismatch',
    `the copy re-check of ${tp.schema}.${tp.table} still finds differing rows after ${MAX_ROUNDS} repair rounds (${which}); the legacy table is untouched and authoritative`,
    { table: tp.table, stage: 'copy' },
  );
}

type Rechecked = Pick<RecheckResult, 'chunks' | 'rounds' | 'repaired'>;

/** Plans without the change log: both sides' chunks compared, then the differing chunks' rows repaired, round by round. */
async function recheckChunks(pool: pg.Pool, c: pg.PoolClient, tp: TablePlan, chunkRows: number): Promise<Rechecked> {
  const { chunks, mismatched: first } = await compareChunks(pool, c, tp, chunkRows);
  let mismatched = first;
  let repaired = 0;
  let rounds = 0;
  while (mismatched.length) {
    if (++rounds > MAX_ROUNDS) throw stillDiffering(tp, `chunks ${mismatched.slice(0, 5).join(', ')}`);
    // Keys that differ, read in one snapshot; then each set repaired under its row locks.
    const { keys, still } = await differingKeys(c, tp, mismatched, chunkRows);
    if (!keys.length) break;
    await repair(c, tp, keys, repaired, pool);
    repaired += keys.length;
    mismatched = still;
  }
  return { chunks, rounds, repaired };
}

/** Both sides in one snapshot, read at once on two connections: the chunks, and those that differ. */
async function compareChunks(pool: pg.Pool, c: pg.PoolClient, tp: TablePlan, chunkRows: number): Promise<{ chunks: number; mismatched: string[] }> {
  return inTx(
    c,
    async () => {
      await c.query(sqlFile('session/utc'));
      await c.query(sqlFile('session/no_jit'));
      const snapshot = (await c.query(sqlFile('session/export_snapshot'))).rows[0].s as string;
      // Chunk by chunk at once: under live writes some chunk usually differs, and comparing
      // whole tables first then costs a second pass (whole tables, then chunks: 9.6 s at 10M rows).
      const [legacy, partitioned] = await keepAlive(() =>
        Promise.all([
          sideHashes(c, chunkHashSql(tp, tp.table, chunkRows)),
          inSnapshot(pool, snapshot, async (c2) => {
            await c2.query(sqlFile('session/utc'));
            return sideHashes(c2, chunkHashSql(tp, tp.names.partitioned, chunkRows));
          }),
        ]),
      );
      const all = new Set([...legacy.keys(), ...partitioned.keys()]);
      return { chunks: all.size, mismatched: [...all].filter((k) => legacy.get(k) !== partitioned.get(k)) };
    },
    sqlFile('session/begin_repeatable_read'),
  );
}

/** Keys that differ in the `mismatched` chunks, read in one snapshot, up to KEYS_PER_ROUND; `still`: the chunks to read again. */
async function differingKeys(c: pg.PoolClient, tp: TablePlan, mismatched: string[], chunkRows: number): Promise<{ keys: string[][]; still: string[] }> {
  const diffParams = (chunk: string) => (tp.splitColumn ? chunkBounds(tp, chunk, chunkRows) : [chunk, null]);
  const keys: string[][] = [];
  const still: string[] = [];
  await inTx(
    c,
    async () => {
      await c.query(sqlFile('session/utc'));
      for (const [i, chunk] of mismatched.entries()) {
        if (keys.length >= KEYS_PER_ROUND) {
          still.push(...mismatched.slice(i)); // the next round reads these
          break;
        }
        Context.current().heartbeat({ chunk, keys: keys.length });
        const found = (await keepAlive(() => c.query(chunkDiffSql(tp, chunkRows), [...diffParams(chunk), KEYS_PER_ROUND]))).rows;
        if (found.length) still.push(chunk);
        keys.push(...found.map((r) => JSON.parse(r.key as string) as string[]));
      }
    },
    sqlFile('session/begin_repeatable_read'),
  );
  return { keys, still };
}

/**
 * Rewrites the rows of `keys` from the legacy table, every row found by index, in transactions of
 * at most keysPerRepair keys sized to the lock budget as they go: one whose own statements ran
 * out of it is tried again at once with half the keys (down to one key, which then gets
 * lockedTx's tries), and one done within a quarter of it lets the next take twice as many. A key
 * looked up in every partition costs what the machine gives it (10M rows on a busy 2-core VM: a
 * transaction of 1,000 keys over 37 partitions ran past the 750 ms budget four times and the
 * switchover rolled back). One that waited for a row a writer holds (seen through `probe`) keeps
 * its keys and gets lockedTx's tries: fewer keys would wait for the same writer.
 */
export async function repair(c: pg.PoolClient, tp: TablePlan, keys: string[][], before = 0, probe?: pg.Pool): Promise<void> {
  const most = keysPerRepair(tp.partitions.length);
  let n = most;
  let patient = false;
  for (let i = 0; i < keys.length;) {
    const part = keys.slice(i, i + n);
    const t0 = Date.now();
    const once = n > 1 && !patient;
    // The legacy rows' locks are application locks: under the lock budget, so a writer holding one
    // is never the one a deadlock check picks (activities/locks.ts).
    const done = await lockedTx({ client: c }, { what: `re-check repair of ${tp.schema}.${tp.table}`, attempts: once ? 1 : undefined, probe }, async (tx) => {
      await tx.client.query(OUR_WRITE_SQL);
      await tx.client.query(sqlFile('session/index_lookups'));
      for (const s of repairSql(tp)) await tx.q(s, [JSON.stringify(part)]);
    }).catch((err) => {
      if (once && (err as { type?: string }).type === 'LockTimeout') return err as Error;
      throw err;
    });
    if (done instanceof Error) {
      if (blockedBy(done)) patient = true;
      else n = Math.ceil(n / 2);
      continue;
    }
    patient = false;
    i += part.length;
    if (Date.now() - t0 < done.budgetMs / 4) n = Math.min(most, n * 2);
    Context.current().heartbeat({ repaired: before + i, keysPerTransaction: n });
    throwIfCancelled();
  }
}

/**
 * The re-check over the change log: a batch can only get wrong a row a writer touched while it
 * ran, and the trigger logged every such key; those rows are compared (whole rows, one snapshot
 * per page of keys), the differing ones rewritten under their row lock and compared again.
 */
async function recheckLogged(c: pg.PoolClient, tp: TablePlan, probe: pg.Pool): Promise<Pick<RecheckResult, 'rounds' | 'repaired' | 'keysChecked'>> {
  const first = await keepAlive(() => compareLogged(c, tp));
  let differ = first.differ;
  let keys = first.differKeys;
  let repaired = 0;
  let rounds = 0;
  while (differ.length) {
    if (++rounds > MAX_ROUNDS)
      throw stillDiffering(
        tp,
        `keys ${differ
          .slice(0, 5)
          .map((k) => k.join(','))
          .join('; ')}`,
      );
    await repair(c, tp, differ, repaired, probe);
    repaired += differ.length;
    // The repaired ids again, at every key logged for them.
    const next: string[][] = [];
    const nextKeys: string[] = [];
    for (let i = 0; i < keys.length; i += KEYS_PER_ROUND) {
      const r = (await c.query(keysCompareSql(tp), [`[${keys.slice(i, i + KEYS_PER_ROUND).join(',')}]`])).rows[0];
      next.push(...(r.differ as string[]).map((k) => JSON.parse(k) as string[]));
      nextKeys.push(...(r.differ_keys as string[]));
    }
    differ = next;
    keys = nextKeys;
  }
  return { rounds, repaired, keysChecked: first.keys };
}
