// Partition ranges: pure date arithmetic (UTC), every interval.
import { partitionRanges, floorTo, partitionName } from '../src/partitions';

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
