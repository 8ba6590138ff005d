// CPU and WAL per stage in the benchmark's report (bench/resources.ts): counters read between samples.
import { at, perStage, type Sample } from '../bench/resources';

const samples: Sample[] = [
  { t: 1000, busy: 10, postgres: 4, worker: 1, wal: 0 },
  { t: 1100, busy: 10.2, postgres: 4.1, worker: 1.05, wal: 1_000_000 },
  { t: 1300, busy: 10.6, postgres: 4.5, worker: 1.05, wal: 5_000_000 },
];

test('a counter between two samples is read on the line between them, clamped at both ends', () => {
  expect(at(samples, 1050, 'busy')).toBeCloseTo(10.1);
  expect(at(samples, 1200, 'wal')).toBe(3_000_000);
  expect(at(samples, 500, 'postgres')).toBe(4);
  expect(at(samples, 5000, 'worker')).toBe(1.05);
  expect(at([], 1000, 'busy')).toBeNaN();
});

test('each stage: its seconds, CPU of the machine, postgres and the worker, and WAL in MB', () => {
  expect(perStage(samples, [{ stage: 'copy', start: 1050, end: 1300 }])).toEqual([
    { stage: 'copy', seconds: 0.25, busyCpuSeconds: 0.5, postgresCpuSeconds: 0.45, workerCpuSeconds: 0.03, walMb: 4.5 },
  ]);
});
