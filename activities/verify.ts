// Verification: row counts, money sums and the sum of every row's hash (whole table, then per
// partition range where they differ), legacy against partitioned, read in one snapshot (the
// dual-write triggers keep both sides in step transactionally, so one snapshot sees them equal
// while writers run).
import { Context } from '@temporalio/activity';
import { sqlFile, withTx } from '../src/db';
import { rowCountSql } from '../src/sqlgen';
import { checksumByRangeSql, diffIdsSql } from '../src/sqlgen';
import type { Checksum, RangeMismatch, TablePlan, TableVerification, VerifyMode, WrittenCheck } from '../src/types';
import { acceptBehind, behindTriggers, compareLogged, compareWritten, foreignTriggers, forgetCompared } from './changed';
import type pg from 'pg';
import { audit, bindDeps, checksum, Deps, keepAlive, stage, toChecksum } from './context';
import { switchoverMetrics } from '../src/metrics';
import { inSnapshot } from './recheck';
import { resumeAutovacuum } from './autovacuum';
import { analyzePartitioned } from './analyze';
import { buildMatviews, refreshMatviews } from './matview-swap';

/** Adds two decimal strings exactly (numeric sums can carry fractions). */
export function addDecimal(a: string, b: string): string {
  const scale = Math.max((a.split('.')[1] ?? '').length, (b.split('.')[1] ?? '').length);
  const toInt = (x: string) => {
    const [i, f = ''] = x.split('.');
    const neg = i.startsWith('-');
    const v = BigInt(i.replace('-', '') + f.padEnd(scale, '0'));
    return neg ? -v : v;
  };
  const sum = toInt(a) + toInt(b);
  if (scale === 0) return String(sum);
  const abs = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0');
  return `${sum < 0n ? '-' : ''}${abs.slice(0, -scale)}.${abs.slice(-scale)}`;
}

function total(ranges: Map<string, Checksum>, tp: TablePlan): Checksum {
  const sums: Record<string, string> = Object.fromEntries(tp.sumColumns.map((c) => [c, '0']));
  let rows = 0;
  let hash = 0n;
  for (const r of ranges.values()) {
    rows += r.rows;
    hash += BigInt(r.rowHash);
    for (const c of tp.sumColumns) sums[c] = addDecimal(sums[c], r.sums[c]);
  }
  return { rows, rowHash: String(hash), sums };
}

export function sameChecksum(a: Checksum | undefined, b: Checksum | undefined): boolean {
  return !!a && !!b && a.rows === b.rows && a.rowHash === b.rowHash && JSON.stringify(a.sums) === JSON.stringify(b.sums);
}

type Metrics = ReturnType<typeof switchoverMetrics>;

/**
 * `opts.mode` "incremental" (plans with the change log): counts of both tables and the rows
 * written through the triggers; otherwise, and with "full", every row of both. `opts.analyze`
 * false: the statistics are the separate analyzeTable activity (calls recorded before it: here).
 */
export async function verifyTable(
  { pools }: Deps,
  database: string,
  tp: TablePlan,
  opts: { mode?: VerifyMode; analyze?: boolean } = {},
): Promise<TableVerification> {
  const metrics = switchoverMetrics({ table: tp.table });
  metrics.verifyProgress.set(0);
  if (opts.analyze !== false) await analyzeFor(pools.get(database), tp);
  const incremental = opts.mode === 'incremental' && tp.changeLog === true;
  return stage('verify', tp.table, () =>
    withTx(pools.get(database), (c) => verifyInSnapshot(pools.get(database), c, tp, incremental, metrics), sqlFile('session/begin_repeatable_read')),
  );
}

/** Verification in the repeatable-read transaction on `c`: both sides from its one snapshot, recorded (PRE-MIGRATION, POST-MIGRATION). */
async function verifyInSnapshot(pool: pg.Pool, c: pg.PoolClient, tp: TablePlan, incremental: boolean, metrics: Metrics): Promise<TableVerification> {
  const t0 = Date.now();
  await c.query(sqlFile('session/utc'));
  await c.query(sqlFile('session/no_jit')); // compiling costs more than it saves on these scans (measured)
  // The partitioned side is read at the same time on a second connection, in this
  // transaction's snapshot (exported), so both sides still come from one snapshot.
  const snapshot = (await c.query(sqlFile('session/export_snapshot'))).rows[0].s as string;
  const other = <T>(fn: (c2: pg.ClientBase) => Promise<T>) => inSnapshot(pool, snapshot, async (c2) => (await c2.query(sqlFile('session/utc')), fn(c2)));
  // Writes the change log cannot show (the trigger disabled for a while, a statement on the
  // partitioned copy itself): then every row is compared, whatever the mode.
  const behind = tp.changeLog ? await behindTriggers(c, tp) : null;
  const reasons = [...(behind?.reasons ?? []), ...(incremental ? await foreignTriggers(c, tp) : [])];
  const escalated = incremental && reasons.length ? reasons : undefined;
  const found = incremental && !escalated ? await compareIncremental(c, tp, other) : await compareFull(c, tp, other);
  const { legacy, partitioned, mismatches, sampleIds } = found;
  metrics.verifyProgress.set(0.5);
  const result: TableVerification = {
    table: tp.table,
    ok: mismatches.length === 0,
    legacy,
    partitioned,
    ranges: found.ranges,
    mismatches: mismatches.slice(0, 20),
    sampleIds: sampleIds.slice(0, 20),
    ms: Date.now() - t0,
    mode: incremental && !escalated ? 'incremental' : 'full',
    ...(incremental && !escalated ? { keysChecked: found.keysChecked } : {}),
    ...(escalated ? { escalated } : {}),
  };
  if (result.ok && behind) {
    // Everything this snapshot saw is compared: the next comparison (the cutover's) reads only what comes after.
    await forgetCompared(c, tp, found.seq ?? MAX_SEQ);
    await acceptBehind(c, tp, behind);
  }
  metrics.verifyProgress.set(1);
  metrics.verifyMismatches.set(mismatches.length);
  await recordVerification(c, tp, result, mismatches);
  return result;
}

/** Both stages come from the same snapshot, so their counts are comparable. */
async function recordVerification(c: pg.ClientBase, tp: TablePlan, result: TableVerification, mismatches: RangeMismatch[]): Promise<void> {
  await audit(c, { schema: tp.schema, table: tp.table, stage: 'PRE-MIGRATION', checksum: result.legacy, ms: result.ms });
  await audit(c, {
    schema: tp.schema,
    table: tp.table,
    stage: 'POST-MIGRATION',
    checksum: result.partitioned,
    ms: result.ms,
    details: {
      ok: result.ok,
      mode: result.mode,
      keysChecked: result.keysChecked,
      escalated: result.escalated,
      mismatchedRanges: mismatches.map((m) => m.range),
      sampleIds: result.sampleIds,
    },
  });
}

/**
 * While approval waits: the rows written since the last comparison compared (one snapshot, by
 * the change log), their entries forgotten, and what may have passed the triggers; so the log
 * stays as large as what is written between two passes, and a difference is known before
 * anyone approves.
 */
export async function verifyWritten({ pools }: Deps, database: string, tp: TablePlan, lockTimeoutMs: number): Promise<WrittenCheck> {
  return stage('verify', tp.table, async () => {
    const w = await compareWritten(pools.get(database), tp, lockTimeoutMs);
    await refreshMatviews(pools.get(database), tp, 'waiting');
    return {
      table: tp.table,
      ok: !w || w.changes.length === 0,
      keys: w?.keys ?? 0,
      logRows: w?.logRows ?? 0,
      changes: w?.changes ?? [],
      at: new Date().toISOString(),
    };
  });
}

/** Statistics before cutover (the verify stage runs it after verifyTable), partitions in `parallelism` sessions (default 2); then the materialized views carried. */
export async function analyzeTable(
  { pools }: Deps,
  database: string,
  tp: TablePlan,
  opts: { parallelism?: number } = {},
): Promise<{ skipped: string | null; autovacuumResumed: number }> {
  const skipped = await analyzeFor(pools.get(database), tp, opts.parallelism);
  // Statistics in place (or skipped, and then autovacuum's to gather): autovacuum back on the partitions.
  const resumed = await stage('verify', tp.table, () => resumeAutovacuum(pools.get(database), tp));
  // With statistics in place: the materialized views carried, built over the partitioned table.
  await buildMatviews(pools.get(database), tp);
  return { skipped, autovacuumResumed: resumed.length };
}

export const verifyActivities = (deps: Deps) => bindDeps(deps, { verifyTable, verifyWritten, analyzeTable });

/**
 * ANALYZE of the partitioned table: the copy wrote the partitions without one, and autovacuum
 * never analyzes a partitioned parent; the first queries after cutover would plan on none. The
 * partitions in parallel sessions, the parent's own statistics beside them (activities/analyze.ts).
 */
async function analyzeFor(pool: pg.Pool, tp: TablePlan, parallelism = 2): Promise<string | null> {
  const skipped = await stage('verify', tp.table, () =>
    keepAlive(() => analyzePartitioned(pool, tp.schema, tp.names.partitioned, parallelism), { analyzing: tp.names.partitioned }),
  );
  if (skipped) Context.current().log.warn(`${skipped}; the partitions of ${tp.table} keep the statistics they have`);
  return skipped;
}

type Other = <T>(fn: (c2: pg.ClientBase) => Promise<T>) => Promise<T>;
interface Found {
  legacy: Checksum;
  partitioned: Checksum;
  ranges: number;
  mismatches: RangeMismatch[];
  sampleIds: string[];
  keysChecked?: number;
  /** Incremental: the change log's position compared up to. */
  seq?: string;
}

const MAX_SEQ = '9223372036854775807';

/** Every row of both sides: whole-table totals, and per range where they differ. */
async function compareFull(c: pg.ClientBase, tp: TablePlan, other: Other): Promise<Found> {
  const byRange = async (db: pg.ClientBase, table: string) =>
    new Map<string, Checksum>((await keepAlive(() => db.query(checksumByRangeSql(tp, table)))).rows.map((r) => [r.range as string, toChecksum(r, tp)]));
  // Whole-table totals first (no grouping: about a third of the per-range cost); only when they
  // differ are the ranges compared, to name where and which rows.
  const [lt, pt] = await keepAlive(() => Promise.all([checksum(c, tp, tp.table), other((c2) => checksum(c2, tp, tp.names.partitioned))]));
  const [legacy, partitioned] = sameChecksum(lt, pt)
    ? [new Map([['all', lt]]), new Map([['all', pt]])]
    : await Promise.all([byRange(c, tp.table), other((c2) => byRange(c2, tp.names.partitioned))]);
  const mismatches: RangeMismatch[] = [];
  const empty: Checksum = { rows: 0, sums: {}, rowHash: '0' };
  for (const range of new Set([...legacy.keys(), ...partitioned.keys()])) {
    if (!sameChecksum(legacy.get(range), partitioned.get(range))) {
      mismatches.push({ range, legacy: legacy.get(range) ?? empty, partitioned: partitioned.get(range) ?? empty });
    }
  }
  const sampleIds: string[] = [];
  for (const m of mismatches.slice(0, 5)) {
    const ids = (await c.query(diffIdsSql(tp), [m.range])).rows.map((r) => r.id as string);
    sampleIds.push(...ids.filter((id) => !sampleIds.includes(id)));
  }
  return { legacy: total(legacy, tp), partitioned: total(partitioned, tp), ranges: legacy.size, mismatches, sampleIds };
}

/**
 * The rows written during the switchover and the row counts: both tables counted at once (one
 * snapshot, two connections), every key the trigger logged compared row by row in the same
 * snapshot. The rows never written since their batch are the copy's INSERT ... SELECT of them;
 * a change made behind the triggers (replica role, a disabled trigger) is caught by the counts
 * when it adds or removes rows, and only by "full" when it updates one.
 */
async function compareIncremental(c: pg.ClientBase, tp: TablePlan, other: Other): Promise<Found> {
  const count = async (db: pg.ClientBase, table: string) => Number((await db.query(rowCountSql(tp.schema, table))).rows[0].n);
  // Three connections in the one snapshot: each count, and the logged rows beside them.
  const [legacyRows, partitionedRows, logged] = await keepAlive(() =>
    Promise.all([count(c, tp.table), other((c2) => count(c2, tp.names.partitioned)), other((c3) => compareLogged(c3, tp))]),
  );
  const legacy: Checksum = { rows: legacyRows, sums: {}, rowHash: String(logged.legacyHash) };
  const partitioned: Checksum = { rows: partitionedRows, sums: {}, rowHash: String(logged.partitionedHash) };
  const mismatches: RangeMismatch[] = [];
  if (legacyRows !== partitionedRows)
    mismatches.push({
      range: `all rows (count: ${legacyRows} in ${tp.table}, ${partitionedRows} in ${tp.names.partitioned}; "verify": "full" names the rows)`,
      legacy: { ...legacy, rowHash: '0' },
      partitioned: { ...partitioned, rowHash: '0' },
    });
  if (logged.differ.length) {
    mismatches.push({
      range: `rows written during the switchover (${logged.differ.length} of ${logged.keys} keys differ)`,
      legacy: { rows: logged.legacyRows, sums: {}, rowHash: String(logged.legacyHash) },
      partitioned: { rows: logged.partitionedRows, sums: {}, rowHash: String(logged.partitionedHash) },
    });
  }
  return {
    legacy,
    partitioned,
    ranges: 1,
    mismatches,
    sampleIds: logged.differ.slice(0, 20).map((k) => k.join(',')),
    keysChecked: logged.keys,
    seq: logged.seq,
  };
}
