// Replays every recorded history (test/histories/*.json, made by `npm run record-histories`)
// against the current workflow code. A change that alters the order or kind of a workflow's
// steps without patched() fails here, naming the history, before it can break a running
// switchover after a deploy.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';

const DIR = join(__dirname, 'histories');

/** The bundle global-setup built from workflows/index.ts, or the source itself outside jest. */
export function replayOptions(): ReplayWorkerOptions {
  const bundle = process.env.PS_TEST_WORKFLOW_BUNDLE;
  return {
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') }),
    replayName: 'replay-test',
  };
}

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('there are recorded histories of every kind of run', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'completed.json',
      'rejected.json',
      'rejected-rollback.json',
      'failed-parity.json',
      'dry-run.json',
      'rollback-after-cutover.json',
      'cleanup-type.json',
    ]),
  );
});

test('every recorded history replays without a determinism error', async () => {
  const histories = files.map((file) => ({ file, history: historyFromJSON(JSON.parse(readFileSync(join(DIR, file), 'utf8'))) }));
  const failures: string[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    replayOptions(),
    // Each file is named after its workflow id, which the workflow code reads (child ids).
    histories.map((h) => ({ workflowId: h.file.replace(/\.json$/, ''), history: h.history })),
  );
  for await (const r of results) {
    replayed++;
    // Core's message is long; its "[TMPRL1100] Nondeterminism error: ..." part says what differs.
    if (r.error) failures.push(`test/histories/${r.workflowId}.json: ${/\[TMPRL\d+\][^"]*/.exec(r.error.message)?.[0] ?? r.error.message}`);
  }
  expect(replayed).toBe(files.length);
  expect(failures).toEqual([]);
});
