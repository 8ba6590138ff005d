// Starts one real Temporal dev server (the project's CLI) for the whole run and bundles the
// workflow code once; each test file then runs its own worker on its own task queue and database.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { devServerExecutable } from '../src/temporal-cli';
import { SwitchoverFleet, SwitchoverPhase, SwitchoverTables } from '../src/shared';

export default async function globalSetup() {
  // Bundle first: a workflow that does not compile must not leave a dev server behind.
  const dir = mkdtempSync(join(tmpdir(), 'ps-test-'));
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietLogger });
  const codePath = join(dir, 'workflow-bundle.js');
  writeFileSync(codePath, code);
  const executable = devServerExecutable();
  // The SDK gives the server 5 s to answer; once, in a fresh-clone CI run right after npm ci, it
  // did not (connection refused): three tries, each on new ports.
  let uiPort = 0;
  let env: TestWorkflowEnvironment | undefined;
  for (let attempt = 1; !env; attempt++) {
    uiPort = 18233 + Math.floor(Math.random() * 1000);
    try {
      env = await TestWorkflowEnvironment.createLocal({
        server: {
          ...(executable ? { executable } : {}),
          searchAttributes: [SwitchoverPhase, SwitchoverTables, SwitchoverFleet],
          uiPort,
          extraArgs: ['--log-level', 'error'],
        },
      });
    } catch (err) {
      if (attempt >= 3) throw err;
      console.error(`the Temporal dev server did not start (try ${attempt} of 3): ${(err as Error).message}`);
    }
  }
  (globalThis as Record<string, unknown>).__TEMPORAL_ENV__ = env;
  process.env.PS_TEST_TEMPORAL_ADDRESS = env.address;
  process.env.PS_TEST_TEMPORAL_UI = `http://127.0.0.1:${uiPort}`;
  process.env.PS_TEST_WORKFLOW_BUNDLE = codePath;
  process.env.PS_TEST_TEMPORAL_CLI = executable?.path ?? '';
  process.env.PS_TEST_DIR = dir;
}

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
