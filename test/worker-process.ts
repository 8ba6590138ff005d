// A worker as operators run it: `npm run worker` in its own process, configured by environment
// variables, stopped by a signal. Uses the run's prebuilt workflow bundle so it starts quickly.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { temporalAddress, waitFor } from './helpers';

export interface WorkerProcess {
  proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once it has exited. */
  exited: Promise<number | string>;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export async function spawnWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const proc = spawn('npm', ['run', '-s', 'worker'], {
    cwd: join(__dirname, '..'),
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: temporalAddress(),
      WORKFLOW_BUNDLE: process.env.PS_TEST_WORKFLOW_BUNDLE!,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const w: WorkerProcess = {
    proc,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  try {
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`worker exited with ${proc.exitCode}:\n${out}`);
        return /partition-switchover worker .* on /.test(out);
      },
      'the worker process to start',
      30000,
    );
  } catch (err) {
    await w.stop('SIGKILL');
    throw err;
  }
  return w;
}
