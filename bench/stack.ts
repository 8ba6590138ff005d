// What both benchmarks run the switchover on: the project's Temporal dev server and a worker
// process (bin/worker.ts through tsx, the way users run it), and a client of that server.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SwitchoverFleet, SwitchoverPhase, SwitchoverTables } from '../src/shared';
import { devServerExecutable } from '../src/temporal-cli';

export interface Stack {
  client: Client;
  worker: ChildProcess;
  /** The worker's last 4,000 characters of stderr (printed when a run fails). */
  workerErr(): string;
  stop(): Promise<void>;
}

/** Starts the dev server, then the worker with `env` (its database targets and task queue) pointed at it. */
export async function startStack(env: NodeJS.ProcessEnv): Promise<Stack> {
  const executable = devServerExecutable();
  const temporal = await TestWorkflowEnvironment.createLocal({
    server: {
      ...(executable ? { executable } : {}),
      searchAttributes: [SwitchoverPhase, SwitchoverTables, SwitchoverFleet],
      extraArgs: ['--log-level', 'error'],
    },
  });
  const root = join(__dirname, '..');
  const worker = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin', 'worker.ts')], {
    cwd: root,
    env: { ...env, TEMPORAL_ADDRESS: temporal.address },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  worker.stderr!.on('data', (d) => (err = (err + d.toString()).slice(-4000)));
  const connection = await Connection.connect({ address: temporal.address });
  return {
    client: new Client({ connection }),
    worker,
    workerErr: () => err,
    async stop() {
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
      await connection.close();
      await temporal.teardown();
    },
  };
}
