// Partition ranges: pure date arithmetic (UTC), every interval.
import {
  partitionRanges,
  floorTo,
  partitionName,
  withOpenEnds,
  coverageLines,
  isPeriod,
  relationsPerPartition,
  partitionsPerTransaction,
  batches,
} from '../src/partitions';
import { partitionSql } from '../src/sqlgen';
import { col, revenuesPlan } from './fixtures';

test('monthly ranges cover the data and run premake months past today', () => {
  const r = partitionRanges({ min: '2024-01-15', max: '2024-03-02', today: '2024-04-10', interval: 'month', premake: 2 });
  expect(r.map((p) => `${p.suffix} ${p.from}..${p.to}`)).toEqual([
    'p202401 2024-01-01..2024-02-01',
    'p202402 2024-02-01..2024-03-01',
    'p202403 2024-03-01..2024-04-01',
    'p202404 2024-04-01..2024-05-01',
    'p202405 2024-05-01..2024-06-01',
    'p202406 2024-06-01..2024-07-01',
  ]);
});

test('data beyond today extends the range; an empty table gets the current period', () => {
  expect(partitionRanges({ min: '2025-11-30', max: '2026-02-01', today: '2025-12-01', interval: 'quarter', premake: 1 }).map((p) => p.suffix)).toEqual([
    'p2025q4',
    'p2026q1',
    'p2026q2',
  ]);
  expect(partitionRanges({ min: null, max: null, today: '2024-02-29', interval: 'year', premake: 1 })).toEqual([
    { suffix: 'p2024', from: '2024-01-01', to: '2025-01-01' },
    { suffix: 'p2025', from: '2025-01-01', to: '2026-01-01' },
  ]);
});

test('weeks start on Monday; days roll over month ends', () => {
  expect(floorTo(new Date('2024-03-03T12:00:00Z'), 'week').toISOString().slice(0, 10)).toBe('2024-02-26');
  const w = partitionRanges({ min: '2024-02-28', max: '2024-03-05', today: '2024-03-05', interval: 'week', premake: 0 });
  expect(w.map((p) => `${p.from}..${p.to}`)).toEqual(['2024-02-26..2024-03-04', '2024-03-04..2024-03-11']);
  const d = partitionRanges({ min: '2024-02-28', max: '2024-03-01', today: '2024-03-01', interval: 'day', premake: 0 });
  expect(d.map((p) => p.suffix)).toEqual(['p20240228', 'p20240229', 'p20240301']);
});

test('too many partitions is refused with advice', () => {
  expect(() => partitionRanges({ min: '1900-01-01', max: '2024-01-01', today: '2024-01-01', interval: 'day', premake: 0 })).toThrow(
    /choose a coarser interval/,
  );
});

test('partition names fit in 63 bytes; long names sharing a prefix stay distinct (hash suffix)', () => {
  expect(partitionName('revenues', 'p202401')).toBe('revenues_p202401');
  const a = partitionName(`${'x'.repeat(58)}a`, 'p202401');
  const b = partitionName(`${'x'.repeat(58)}b`, 'p202401');
  expect(a).toMatch(/^x{40}_[0-9a-f]{6}_p202401$/);
  expect(a).not.toBe(b);
  expect(Buffer.byteLength(partitionName('é'.repeat(40), 'p202401'))).toBeLessThanOrEqual(63);
});

test('open ends: pmin from MINVALUE, pmax to MAXVALUE, rendered as keywords; the plan says where each key goes', () => {
  const r = withOpenEnds(partitionRanges({ min: '2024-01-15', max: '2024-02-02', today: '2024-02-10', interval: 'month', premake: 1 }));
  expect(r.map((p) => `${p.suffix} ${p.from}..${p.to}`)).toEqual([
    'pmin MINVALUE..2024-01-01',
    'p202401 2024-01-01..2024-02-01',
    'p202402 2024-02-01..2024-03-01',
    'p202403 2024-03-01..2024-04-01',
    'pmax 2024-04-01..MAXVALUE',
  ]);
  expect(r.filter(isPeriod)).toHaveLength(3);
  const tp = revenuesPlan(col('status', 'text'));
  expect(partitionSql(tp, 'revenues_partitioned', r[0])).toBe(
    `CREATE TABLE IF NOT EXISTS "public"."revenues_pmin" PARTITION OF "public"."revenues_partitioned" FOR VALUES FROM (MINVALUE) TO ('2024-01-01 00:00:00+00')`,
  );
  expect(partitionSql(tp, 'revenues_partitioned', r[4])).toBe(
    `CREATE TABLE IF NOT EXISTS "public"."revenues_pmax" PARTITION OF "public"."revenues_partitioned" FOR VALUES FROM ('2024-04-01 00:00:00+00') TO (MAXVALUE)`,
  );
  expect(
    coverageLines({
      table: 'revenues',
      partitionKey: 'occurred_at',
      interval: 'month',
      partitions: r,
      dataRange: { min: '2024-01-15', max: '2024-02-02' },
      premake: 1,
    }),
  ).toEqual([
    'occurred_at before 2024-01-01: revenues_pmin (MINVALUE..2024-01-01)',
    'occurred_at 2024-01-01..2024-04-01: 3 month partitions (data 2024-01-15..2024-02-02, then 1 premade month)',
    'occurred_at from 2024-04-01: revenues_pmax (2024-04-01..MAXVALUE); maintainPartitions splits months out of it as they come',
    'every value of occurred_at has a partition; NULL is refused (the key is NOT NULL)',
  ]);
});

test('partitions per transaction: sized to the lock table, every partition in exactly one batch', () => {
  // Default server: max_locks_per_transaction 64; a partition with a primary key: table, TOAST, TOAST index, index.
  expect(relationsPerPartition(1)).toBe(4);
  expect(relationsPerPartition(0)).toBe(4);
  expect(relationsPerPartition(3)).toBe(6);
  expect(partitionsPerTransaction(64, 4)).toBe(32);
  expect(partitionsPerTransaction(64, 6)).toBe(21);
  expect(partitionsPerTransaction(1, 1000)).toBe(1);
  const b = batches([...Array(3000).keys()], 32);
  expect(b.length).toBe(94);
  expect(b.flat()).toEqual([...Array(3000).keys()]);
  expect(batches([], 32)).toEqual([]);
});
