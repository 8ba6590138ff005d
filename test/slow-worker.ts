// A worker process (run with tsx by test/control.test.ts) whose installTriggers first waits a
// minute, heartbeating, before it runs: a short stage slow enough to SIGKILL the worker in.
// Configured like `npm run worker`: TEMPORAL_ADDRESS, TASK_QUEUE, DATABASE_URL, WORKFLOW_BUNDLE.
import { Context } from '@temporalio/activity';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from '../bin/worker';

async function main() {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const w = await createWorker({
    connection,
    taskQueue: process.env.TASK_QUEUE!,
    targets: { default: process.env.DATABASE_URL! },
    workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE! },
    identity: 'slow-worker',
    log: () => undefined,
    wrapActivities: (acts) => ({
      ...acts,
      async installTriggers(...args: Parameters<typeof acts.installTriggers>) {
        const ctx = Context.current();
        console.log(`slow installTriggers attempt ${ctx.info.attempt}`);
        for (let i = 0; i < 60; i++) {
          ctx.heartbeat();
          await new Promise((r) => setTimeout(r, 1000));
        }
        return acts.installTriggers(...args);
      },
    }),
  });
  console.log('slow worker ready');
  await w.run();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
