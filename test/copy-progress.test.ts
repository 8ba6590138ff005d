// A copy stream's progress signals (activities/copy-progress.ts): a bounded number per stream,
// whatever the table's size; a slowdown signalled once it has lasted STALL_SIGNAL_MS, once.
import { ProgressReporter, STALL_SIGNAL_MS, type StreamPosition } from '../activities/copy-progress';
import type { CopyProgress } from '../src/types';

function reporter(estimatedRows: number) {
  const sent: CopyProgress[] = [];
  const rates: number[] = [];
  const metrics = { copyRate: { set: (x: number) => void rates.push(x) } } as never;
  const pos: StreamPosition = { cursor: null, copied: 0, batches: 0 };
  const p = new ProgressReporter({ table: 'revenues', stream: 0, estimatedRows }, pos, metrics, async (x) => void sent.push(x), Date.now());
  return { p, pos, sent, rates };
}

afterEach(() => jest.restoreAllMocks());

test('one signal per tenth of the estimate, and the last', async () => {
  const { p, pos, sent, rates } = reporter(1000);
  for (let copied = 0; copied <= 1000; copied += 10) {
    pos.copied = copied;
    await p.report(false);
  }
  await p.report(true);
  expect(sent.map((x) => x.rowsCopied)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000]);
  expect(sent.at(-1)).toMatchObject({ table: 'revenues', stream: 0, done: true, brakes: 0, brake: null });
  expect(rates).toHaveLength(102);
  expect(rates.at(-1)).toBe(0);
});

test('a slowdown is signalled once it lasted STALL_SIGNAL_MS, once per stream, and its end; an operator hold at each change', async () => {
  let now = 1_000_000;
  jest.spyOn(Date, 'now').mockImplementation(() => now);
  const { p, sent } = reporter(1000);
  await p.setBraking('slowed down', false);
  expect(sent).toHaveLength(0);
  now += STALL_SIGNAL_MS;
  await p.setBraking('slowed down', false);
  expect(sent.map((x) => x.brake)).toEqual(['slowed down']);
  await p.setBraking(null, false);
  expect(sent.map((x) => x.brake)).toEqual(['slowed down', null]);
  await p.setBraking('slowed down again', false);
  now += STALL_SIGNAL_MS;
  await p.setBraking('slowed down again', false);
  expect(sent).toHaveLength(2);
  await p.setBraking('paused by the operator', true);
  await p.setBraking(null, false);
  expect(sent.map((x) => x.brake)).toEqual(['slowed down', null, 'paused by the operator', null]);
});

test('a stream that ends while slowed down reports no slowdown: status must not show a finished copy as braking', async () => {
  const { p, pos, sent } = reporter(1000);
  await p.setBraking('slowed down, 20 ms after each batch', false);
  pos.copied = 1000;
  await p.report(false);
  expect(sent.at(-1)).toMatchObject({ done: false, brake: 'slowed down, 20 ms after each batch' });
  await p.report(true);
  expect(sent.at(-1)).toMatchObject({ done: true, brake: null });
});

test('a signal that fails does not fail the copy', async () => {
  const pos: StreamPosition = { cursor: null, copied: 0, batches: 0 };
  const metrics = { copyRate: { set: () => undefined } } as never;
  const p = new ProgressReporter({ table: 't', stream: 1, estimatedRows: 10 }, pos, metrics, () => Promise.reject(new Error('workflow closed')), Date.now());
  await expect(p.report(true)).resolves.toBeUndefined();
});
