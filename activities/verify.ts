// Verification: row counts, money sums and the sum of every row's hash (whole table, then per
// partition range where they differ), legacy against partitioned, read in one snapshot (the
// dual-write triggers keep both sides in step transactionally, so one snapshot sees them equal
// while writers run).
import { Context } from '@temporalio/activity';
import { withClient, withTx } from '../src/db';
import { checksumByRangeSql, diffIdsSql, qname } from '../src/sqlgen';
import type { Checksum, RangeMismatch, TablePlan, TableVerification } from '../src/types';
import type pg from 'pg';
import { audit, checksum, Deps, keepAlive, stage, toChecksum } from './context';
import { switchoverMetrics } from '../src/metrics';
import { inSnapshot } from './recheck';
import { analyzeTable } from './partitions';

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

export function verifyActivities({ pools }: Deps) {
  return {
    async verifyTable(database: string, tp: TablePlan): Promise<TableVerification> {
      const metrics = switchoverMetrics({ table: tp.table });
      metrics.verifyProgress.set(0);
      // Statistics before cutover: the copy wrote the partitions without any ANALYZE, and
      // autovacuum never analyzes a partitioned parent; the first queries after cutover would
      // plan on none. ANALYZE of the parent covers every partition too (its own transaction,
      // outside the verification's snapshot).
      const skipped = await stage('verify', tp.table, () =>
        withClient(pools.get(database), (c) => keepAlive(() => analyzeTable(c, qname(tp.schema, tp.names.partitioned)), { analyzing: tp.names.partitioned })),
      );
      if (skipped) Context.current().log.warn(`${skipped}; the partitions of ${tp.table} keep the statistics they have`);
      return stage('verify', tp.table, () =>
        withTx(
          pools.get(database),
          async (c) => {
            const t0 = Date.now();
            await c.query(`set local timezone = 'UTC'`);
            await c.query('SET LOCAL jit = off'); // compiling costs more than it saves on these scans (measured)
            const byRange = async (table: string) =>
              new Map<string, Checksum>(
                (await keepAlive(() => c.query(checksumByRangeSql(tp, table)))).rows.map((r) => [r.range as string, toChecksum(r, tp)]),
              );
            // The partitioned side is read at the same time on a second connection, in this
            // transaction's snapshot (exported), so both sides still come from one snapshot.
            const snapshot = (await c.query('select pg_export_snapshot() as s')).rows[0].s as string;
            const other = <T>(fn: (c2: pg.ClientBase) => Promise<T>) =>
              inSnapshot(pools.get(database), snapshot, async (c2) => (await c2.query(`set local timezone = 'UTC'`), fn(c2)));
            // Whole-table totals first (no grouping: about a third of the per-range cost); only
            // when they differ are the ranges compared, to name where and which rows.
            const [lt, pt] = await keepAlive(() => Promise.all([checksum(c, tp, tp.table), other((c2) => checksum(c2, tp, tp.names.partitioned))]));
            metrics.verifyProgress.set(0.5);
            const [legacy, partitioned] = sameChecksum(lt, pt)
              ? [new Map([['all', lt]]), new Map([['all', pt]])]
              : await Promise.all([
                  byRange(tp.table),
                  other(async (c2) => {
                    const rows = (await keepAlive(() => c2.query(checksumByRangeSql(tp, tp.names.partitioned)))).rows;
                    return new Map<string, Checksum>(rows.map((r) => [r.range as string, toChecksum(r, tp)]));
                  }),
                ]);
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
            const result: TableVerification = {
              table: tp.table,
              ok: mismatches.length === 0,
              legacy: total(legacy, tp),
              partitioned: total(partitioned, tp),
              ranges: legacy.size,
              mismatches: mismatches.slice(0, 20),
              sampleIds: sampleIds.slice(0, 20),
              ms: Date.now() - t0,
            };
            metrics.verifyProgress.set(1);
            metrics.verifyMismatches.set(mismatches.length);
            // Both stages come from the same snapshot, so their counts are comparable.
            await audit(c, { schema: tp.schema, table: tp.table, stage: 'PRE-MIGRATION', checksum: result.legacy, ms: result.ms });
            await audit(c, {
              schema: tp.schema,
              table: tp.table,
              stage: 'POST-MIGRATION',
              checksum: result.partitioned,
              ms: result.ms,
              details: { ok: result.ok, mismatchedRanges: mismatches.map((m) => m.range), sampleIds: result.sampleIds },
            });
            return result;
          },
          'BEGIN ISOLATION LEVEL REPEATABLE READ',
        ),
      );
    },
  };
}
