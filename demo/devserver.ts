// A local Temporal dev server for the demo and scripts: the project's pinned CLI when it can be
// built, else the SDK's own download (machines with internet). Search attributes registered.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../src/shared';
import { temporalCliPath } from '../src/temporal-cli';

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

export async function freePort(preferred?: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
  if (preferred) {
    try {
      return await tryListen(preferred);
    } catch {
      /* taken: fall through to any free port */
    }
  }
  return tryListen(0);
}

export async function startDevServer(opts: { port?: number; uiPort?: number; dbFilename?: string } = {}): Promise<DevServer> {
  const bin = temporalCliPath();
  const port = await freePort(opts.port ?? 7233);
  const uiPort = await freePort(opts.uiPort ?? 8233);
  if (!bin) {
    // No Go toolchain here: let the SDK download the dev server (needs internet).
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const { SwitchoverFleet, SwitchoverPhase, SwitchoverTables } = await import('../src/shared');
    const env = await TestWorkflowEnvironment.createLocal({
      server: { ip: '127.0.0.1', port, uiPort, dbFilename: opts.dbFilename, searchAttributes: [SwitchoverPhase, SwitchoverTables, SwitchoverFleet] },
    });
    return { address: env.address, uiUrl: `http://127.0.0.1:${uiPort}`, stop: () => env.teardown() };
  }
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort), '--log-level', 'error'];
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  for (const a of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${a.name}=${a.type}`);
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.close();
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`Temporal dev server did not start on ${address}: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
