// The carried materialized views (activities/matviews.ts plans them) from build to cleanup:
// ours is built over `<table>_partitioned` as the view's owner after verification (analyze),
// refreshed while approval waits and, when cheap, right before the cutover's lock; the cutover
// swaps the names under its lock (each view locked alone, before the table, as a REFRESH takes
// them); the rollback swaps them back and drops ours; cleanup drops the original, which reads
// `<table>_legacy`. Each step reads the catalog first (ours and the original after cutover are
// recorded by oid in partition_switchover.created), so running it again ends in the same state.
import type pg from 'pg';
import { sqlFile, withTx } from '../src/db';
import { fail, retryable } from '../src/errors';
import { dropMatviewSql, matviewBuildSql, matviewLockSql, matviewSwapSql, refreshMatviewSql } from '../src/matviewsql';
import { qname } from '../src/sql';
import { viewLockSql, viewName } from '../src/sqlgen';
import type { MatviewPlan, TablePlan } from '../src/types';
import { audit, runId, stage, workflowId } from './context';
import { auditRow, release } from './bookkeeping';
import type { LockedTx } from './locks';
import type { UndoContext } from './undo';

type Kind = 'matview' | 'legacy matview';

/** The record id when the relation now under `name` is the one this switchover's table made (`matview`) or took over at cutover (`legacy matview`). */
async function ours(c: pg.ClientBase, tp: TablePlan, kind: Kind, m: MatviewPlan, name: string): Promise<string | null> {
  const r = (await c.query(sqlFile('bookkeeping/matview_ours'), [tp.schema, tp.table, kind, qname(m.schema, name)])).rows[0];
  return r ? (r.id as string) : null;
}

async function exists(c: pg.ClientBase, m: MatviewPlan, name: string): Promise<boolean> {
  return (await c.query(sqlFile('catalog/relation_exists'), [qname(m.schema, name)])).rows[0].ok;
}

async function record(c: pg.ClientBase, tp: TablePlan, kind: Kind, m: MatviewPlan, name: string): Promise<void> {
  await c.query(sqlFile('bookkeeping/record_matview'), [workflowId(), runId(), tp.schema, tp.table, kind, qname(m.schema, name)]);
}

/** Ours has the original's columns (names, types) and reads `<table>_partitioned`, not the table: else why not. */
async function builtRight(c: pg.ClientBase, tp: TablePlan, m: MatviewPlan): Promise<string | null> {
  const cols = async (name: string) =>
    (await c.query(sqlFile('catalog/matview_columns'), [qname(m.schema, name)])).rows.map((r) => `${r.name} ${r.type}`).join(', ');
  const [mine, theirs] = [await cols(m.newName), await cols(m.name)];
  if (mine !== theirs) return `its columns are (${mine}), the original's (${theirs})`;
  const reads = (await c.query(sqlFile('catalog/matview_reads'), [qname(m.schema, m.newName)])).rows[0].oids.map(String);
  const oid = async (name: string) => String((await c.query(sqlFile('catalog/relation_oid'), [tp.schema, name])).rows[0]?.oid);
  if (!reads.includes(await oid(tp.names.partitioned)) || reads.includes(await oid(tp.table)))
    return `it does not read ${tp.names.partitioned} in place of ${tp.table}`;
  return null;
}

/** Builds ours (one transaction, as the view's owner) unless built; nothing when the original is gone. */
async function build(pool: pg.Pool, tp: TablePlan, m: MatviewPlan): Promise<void> {
  await withTx(pool, async (c) => {
    if (await ours(c, tp, 'matview', m, m.newName)) return;
    if (!(await exists(c, m, m.name))) return;
    if (await exists(c, m, m.newName)) {
      throw fail(
        'StateConflict',
        `${m.schema}.${m.newName} already exists and was not made by this switchover, which would build it as the new materialized view ${m.name}. ` +
          `Nothing was changed by this step; rename or drop it, or roll back and start again`,
        { table: tp.table, stage: 'matview' },
      );
    }
    const t0 = Date.now();
    for (const s of matviewBuildSql(m)) await c.query(s);
    await c.query(sqlFile('session/reset_role'));
    const wrong = await builtRight(c, tp, m);
    if (wrong) {
      throw fail(
        'StateConflict',
        `materialized view ${m.schema}.${m.name} could not be built again over ${tp.names.partitioned}: ${wrong}. Nothing of it was kept; roll back (a failed ` +
          `switchover does so itself), then run ${dropMatviewSql(m.schema, m.name)}; before the next switchover and make it again after it`,
        { table: tp.table, stage: 'matview' },
      );
    }
    await record(c, tp, 'matview', m, m.newName);
    const details = { built: `${m.schema}.${m.newName}` };
    await audit(c, { schema: tp.schema, table: tp.table, stage: `MATVIEW BUILD ${m.schema}.${m.name}`, ms: Date.now() - t0, details });
  });
}

/** After verification (the analyze step): every planned materialized view built over the partitioned table. */
export async function buildMatviews(pool: pg.Pool, tp: TablePlan): Promise<void> {
  // A database error is classified (retryable or not, with PostgreSQL's DETAIL and HINT).
  await stage('materialized view build', tp.table, async () => {
    for (const m of tp.matviews ?? []) await build(pool, tp, m);
  });
}

/** While approval waits, a refresh is due once the last one (or the build) ended at least this many times its duration ago: refreshing takes at most a tenth of the wait. */
const REFRESH_SHARE = 10;

async function due(c: pg.ClientBase, tp: TablePlan, m: MatviewPlan): Promise<boolean> {
  const last =
    (await auditRow(c, tp.schema, tp.table, `MATVIEW REFRESH ${m.schema}.${m.name}`)) ??
    (await auditRow(c, tp.schema, tp.table, `MATVIEW BUILD ${m.schema}.${m.name}`));
  return !last || Date.now() - new Date(last.at).getTime() >= REFRESH_SHARE * Number(last.ms ?? 0);
}

/**
 * Refreshes ours (a plain REFRESH: nobody reads ours yet): `waiting` every populated one when due
 * (within the activity's time, 4 min), `cutover` the cheap ones. A failure (the view's query
 * failing on today's rows, as the application's own refresh would) leaves ours as of its last
 * refresh and is recorded in the audit log (stage `MATVIEW REFRESH <view>`, the last refresh)
 * rather than failing the switchover.
 */
export async function refreshMatviews(pool: pg.Pool, tp: TablePlan, when: 'waiting' | 'cutover'): Promise<void> {
  for (const m of (tp.matviews ?? []).filter((x) => x.populated && (when === 'waiting' || x.refreshAtCutover))) {
    const t0 = Date.now();
    const ran = await withTx(pool, async (c) => {
      if (!(await ours(c, tp, 'matview', m, m.newName))) return null;
      if (when === 'waiting' && !(await due(c, tp, m))) return null;
      if (when === 'waiting') await c.query(sqlFile('session/statement_timeout_4min'));
      await c.query(refreshMatviewSql(m));
      return {};
    }).catch((err: Error) => ({ error: err.message }));
    if (!ran) continue;
    const details = { refreshed: `${m.schema}.${m.newName}`, when, ...ran };
    const row = { schema: tp.schema, table: tp.table, stage: `MATVIEW REFRESH ${m.schema}.${m.name}`, ms: Date.now() - t0, details };
    await withTx(pool, (c) => audit(c, row));
  }
}

/** Right before the cutover's lock: ours built if it is not (a retry after it was dropped), the cheap ones refreshed. */
export async function matviewsBeforeCutover(pool: pg.Pool, tp: TablePlan): Promise<void> {
  await buildMatviews(pool, tp);
  await refreshMatviews(pool, tp, 'cutover');
}

/**
 * Locks each planned materialized view that exists under any of its names, alone and before the
 * table (a REFRESH locks the view, then reads the table); the views reading it first (readers
 * lock a view, then what it reads).
 */
export async function lockMatviews(tx: LockedTx, tp: TablePlan, matviews = tp.matviews ?? []): Promise<void> {
  for (const v of matviews.flatMap((m) => m.views ?? [])) {
    const r = (await tx.client.query(sqlFile('catalog/view_owner'), [viewName(v.createSql)])).rows[0];
    if (r) await tx.q(viewLockSql(r.schema, r.name, r.owner));
  }
  for (const m of matviews) {
    for (const name of [m.name, m.newName, m.legacyName]) {
      const r = (await tx.client.query(sqlFile('catalog/view_owner'), [qname(m.schema, name)])).rows[0];
      if (r) await tx.q(matviewLockSql(r.schema, r.name, r.owner));
    }
  }
}

/** The original's indexes added or dropped since preflight (ours has the planned ones): phrases for the cutover's refusal. */
async function indexChanges(c: pg.ClientBase, m: MatviewPlan): Promise<string[]> {
  const oid = (await c.query(sqlFile('catalog/relation_oid'), [m.schema, m.name])).rows[0].oid;
  const now = (await c.query(sqlFile('catalog/matview_indexes'), [oid])).rows.map((r) => r.name as string);
  const planned = m.indexes.map((i) => i.name);
  return [
    ...now.filter((n) => !planned.includes(n)).map((n) => `index ${n} was added to materialized view ${m.schema}.${m.name}`),
    ...planned.filter((n) => !now.includes(n)).map((n) => `index ${n} was dropped from materialized view ${m.schema}.${m.name}`),
  ];
}

/**
 * In the cutover transaction, under its lock: ours takes each view's name, the original steps
 * aside to its legacy name (recorded, for cleanup). Refused (the transaction rolls back) when the
 * original's indexes changed since preflight: ours would not have them.
 */
export async function swapMatviews(tx: LockedTx, tp: TablePlan): Promise<void> {
  const changes: string[] = [];
  for (const m of tp.matviews ?? []) if (await exists(tx.client, m, m.name)) changes.push(...(await indexChanges(tx.client, m)));
  if (changes.length) {
    throw fail(
      'StateConflict',
      `cutover of ${tp.schema}.${tp.table} refused: since verification, ${changes.join('; ')}. Nothing was changed; roll back (a failed switchover does so itself) and start again`,
      { table: tp.table, stage: 'cutover', changes },
    );
  }
  for (const m of tp.matviews ?? []) {
    const built = await ours(tx.client, tp, 'matview', m, m.newName);
    if (!(await exists(tx.client, m, m.name))) {
      // The application dropped it since preflight: nothing to carry.
      if (built) await tx.q(dropMatviewSql(m.schema, m.newName));
      continue;
    }
    if (!built)
      throw retryable(
        'Transient',
        `cutover of ${tp.schema}.${tp.table}: the new materialized view ${m.schema}.${m.newName} is missing; built again on the retry`,
      );
    for (const s of matviewSwapSql(m, 'cutover')) await tx.q(s);
    // The views reading it: their text names the view, which is ours now.
    for (const v of m.views ?? []) await tx.q(v.createSql);
    await record(tx.client, tp, 'legacy matview', m, m.legacyName);
  }
}

/** What reads ours, made on it since cutover (the carried views follow the original back): its drop would refuse, so the rollback refuses first, naming each and the statements. */
async function readersOfOurs(c: pg.ClientBase, tp: TablePlan): Promise<{ kind: string; name: string; drop_sql: string; of: string }[]> {
  const out = [];
  for (const m of tp.matviews ?? []) {
    for (const name of [m.name, m.newName]) {
      if (!(await ours(c, tp, 'matview', m, name))) continue;
      const carried = new Set((m.views ?? []).map((v) => v.name));
      const deps = (await c.query(sqlFile('catalog/matview_dependents'), [qname(m.schema, name)])).rows.filter(
        (d) => !(d.kind === 'view' && carried.has(d.plain)),
      );
      out.push(...deps.map((d) => ({ ...d, of: `${m.schema}.${name}` })));
    }
  }
  return out;
}

/**
 * The rollback's part (in its locked transaction, before the cutover's undo): after cutover the
 * original takes its name back and ours steps aside; ours is then dropped (before cutover: only
 * that). Refused, changing nothing, when something reads ours.
 */
export async function undoMatviews(u: UndoContext): Promise<void> {
  const { tx, tp } = u;
  const c = tx.client;
  // Only those with something of ours (no lock on a view the switchover never touched).
  const touched: MatviewPlan[] = [];
  for (const m of tp.matviews ?? []) {
    if ((await ours(c, tp, 'matview', m, m.name)) || (await ours(c, tp, 'matview', m, m.newName)) || (await ours(c, tp, 'legacy matview', m, m.legacyName)))
      touched.push(m);
  }
  await lockMatviews(tx, tp, touched);
  const readers = await readersOfOurs(c, tp);
  if (readers.length) {
    throw fail(
      'StateConflict',
      `rollback of ${tp.schema}.${tp.table} refused: ${readers.map((d) => `${d.kind} ${d.name} reads ${d.of}`).join(', ')}, the materialized view built over ` +
        `the partitioned table, which the rollback drops (the original takes its name back). Nothing was changed. Run ${readers.map((d) => `${d.drop_sql};`).join(' ')} ` +
        `then the rollback again, and make ${readers.length === 1 ? 'it' : 'them'} again after it`,
      { table: tp.table, stage: 'rollback', dependents: readers.map((d) => `${d.kind} ${d.name}`) },
    );
  }
  for (const m of touched) {
    const swap = matviewSwapSql(m, 'rollback');
    const half = 1 + m.indexes.length;
    const atName = await ours(c, tp, 'matview', m, m.name);
    const legacy = await ours(c, tp, 'legacy matview', m, m.legacyName);
    if (atName) for (const s of swap.slice(0, half)) await tx.q(s);
    if (legacy && (atName || !(await exists(c, m, m.name)))) {
      for (const s of swap.slice(half)) await tx.q(s);
      // The views reading it: their text names the view, which is the original again.
      for (const v of m.views ?? []) await tx.q(v.createSql);
      await release(c, legacy);
    }
    const built = await ours(c, tp, 'matview', m, m.newName);
    if (built) {
      await tx.q(dropMatviewSql(m.schema, m.newName));
      await release(c, built);
    }
  }
}

/** Cleanup, before `<table>_legacy` is dropped: the original of each view (it reads that table) dropped if it is the one the cutover set aside; ours is the application's now. */
export async function cleanupMatviews(tx: LockedTx, tp: TablePlan, dropped: string[], left: string[]): Promise<void> {
  const c = tx.client;
  for (const m of tp.matviews ?? []) {
    const legacy = await ours(c, tp, 'legacy matview', m, m.legacyName);
    if (legacy) {
      await tx.q(dropMatviewSql(m.schema, m.legacyName));
      await release(c, legacy);
      dropped.push(`${m.schema}.${m.legacyName}`);
    } else if (await exists(c, m, m.legacyName)) {
      left.push(`${m.schema}.${m.legacyName}: not made by this switchover (its oid is not recorded); left in place`);
    }
    const built = await ours(c, tp, 'matview', m, m.name);
    if (built) await release(c, built);
  }
}

/** The rehearsal's leftovers: ours and the original's legacy name, where either still exists. */
export async function matviewLeftovers(c: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const out: string[] = [];
  for (const m of tp.matviews ?? []) for (const name of [m.newName, m.legacyName]) if (await exists(c, m, name)) out.push(`${m.schema}.${name} still exists`);
  return out;
}
