// The worker: one pg Pool per database target, every activity, the workflows of workflows/index.ts.
// Configured by DATABASE_URL[_<NAME>] and the standard Temporal client variables.
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { Duration } from '@temporalio/common';
import { createActivities, type Activities } from '../activities';
import { databaseTargets, taskQueue } from '../src/config';
import { createPools, type Pools } from '../src/db';
import { SEARCH_ATTRIBUTES } from '../src/shared';

/** Whether the namespace has our search attributes; prints the commands to add them when not. */
export async function checkSearchAttributes(connection: NativeConnection, namespace: string, log = console.warn): Promise<boolean> {
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace });
    const have = { ...res.customAttributes, ...res.systemAttributes };
    const missing = SEARCH_ATTRIBUTES.filter((a) => !(a.name in have));
    if (!missing.length) return true;
    log(
      `Search attributes missing in namespace ${namespace}; workflows run without them. To add them:\n` +
        missing.map((a) => `  temporal operator search-attribute create --namespace ${namespace} --name ${a.name} --type ${a.type}`).join('\n'),
    );
    return false;
  } catch (err) {
    log(`Could not list search attributes (${(err as Error).message}); workflows run without them.`);
    return false;
  }
}

export interface StartedWorker {
  worker: Worker;
  pools: Pools;
  /** Runs until shutdown (SIGINT/SIGTERM or worker.shutdown()), then closes the pools. */
  run(): Promise<void>;
}

export async function createWorker(opts: {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  targets?: Record<string, string>;
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  log?: (msg: string) => void;
  /** How long running activities get to finish after SIGTERM (default 20s). */
  shutdownGraceTime?: Duration;
  /** Activities run at once by this worker (each copy stream holds one database connection). */
  maxConcurrentActivities?: number;
  /** Tests wrap activities here (e.g. to fail after one ran for real); nothing else uses it. */
  wrapActivities?: (acts: Activities) => Activities;
}): Promise<StartedWorker> {
  const namespace = opts.namespace ?? 'default';
  const pools = createPools(opts.targets ?? databaseTargets());
  const searchAttributes = await checkSearchAttributes(opts.connection, namespace, opts.log);
  const worker = await Worker.create({
    connection: opts.connection,
    namespace,
    taskQueue: opts.taskQueue ?? taskQueue(),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: (opts.wrapActivities ?? ((a) => a))(createActivities({ pools, searchAttributes })),
    ...(opts.identity ? { identity: opts.identity } : {}),
    // On SIGTERM, running activities get this long to finish their batch; the rest are retried elsewhere.
    shutdownGraceTime: opts.shutdownGraceTime ?? '20s',
    ...(opts.maxConcurrentActivities ? { maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities } : {}),
    // Heartbeats reach the server at most this often (default: up to 60 s): a cancellation
    // (reject, workflow cancel) is delivered with a heartbeat's answer, so within a second or two.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
  });
  return {
    worker,
    pools,
    async run() {
      try {
        await worker.run();
      } finally {
        await pools.end();
      }
    },
  };
}

/**
 * Process-wide SDK runtime, installed once before any connection: Prometheus metrics (the SDK's
 * and ours, src/metrics.ts) at PROMETHEUS_BIND_ADDRESS, and the default shutdown signals, on which
 * Worker.run() drains: new tasks stop, running activities get the grace time, then it returns.
 */
export function installRuntime(env: NodeJS.ProcessEnv = process.env): void {
  const bindAddress = env.PROMETHEUS_BIND_ADDRESS;
  Runtime.install({
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(bindAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress } } } } : {}),
  });
}

async function run() {
  installRuntime();
  const config = loadClientConnectConfig();
  const address = process.env.TEMPORAL_ADDRESS ?? config.connectionOptions.address ?? 'localhost:7233';
  const namespace = process.env.TEMPORAL_NAMESPACE ?? config.namespace ?? 'default';
  const targets = databaseTargets();
  if (!Object.keys(targets).length) {
    throw new Error('no database configured: set DATABASE_URL (target "default") and optionally DATABASE_URL_<NAME>');
  }
  const connection = await NativeConnection.connect({ ...config.connectionOptions, address });
  const w = await createWorker({
    connection,
    namespace,
    // A workflow bundle built ahead of time (bundleWorkflowCode) makes the worker start in a second.
    ...(process.env.WORKFLOW_BUNDLE ? { workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE } } : {}),
    ...(process.env.WORKER_SHUTDOWN_GRACE_TIME ? { shutdownGraceTime: process.env.WORKER_SHUTDOWN_GRACE_TIME as Duration } : {}),
    ...(process.env.MAX_CONCURRENT_ACTIVITIES ? { maxConcurrentActivities: Number(process.env.MAX_CONCURRENT_ACTIVITIES) } : {}),
  });
  console.log(
    `partition-switchover worker ${w.worker.options.identity} on ${address}, namespace ${namespace}, task queue ${taskQueue()}, ` +
      `databases: ${Object.keys(targets).join(', ')}${process.env.PROMETHEUS_BIND_ADDRESS ? `, metrics at http://${process.env.PROMETHEUS_BIND_ADDRESS}/metrics` : ''}`,
  );
  await w.run();
  await connection.close();
  console.log('partition-switchover worker stopped');
}

if (require.main === module) {
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
