// `npm run schedule-maintenance`: a Temporal Schedule that runs the maintainPartitions workflow
// for one database target (default: daily), so partitions keep coming after cutover.
// Running it again updates the schedule instead of failing.
import { parseArgs } from 'node:util';
import { Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { connectClient } from './client';
import { taskQueue as defaultTaskQueue } from '../src/config';
import { describeIssues, maintenanceInput } from '../src/input';

export function maintenanceScheduleId(database: string): string {
  return `partition-maintenance-${database}`;
}

export async function ensureMaintenanceSchedule(
  client: Client,
  opts: { input?: Record<string, unknown>; every?: Duration; taskQueue?: string } = {},
): Promise<{ scheduleId: string; created: boolean }> {
  const parsed = maintenanceInput.safeParse(opts.input ?? {});
  if (!parsed.success) throw new Error(`invalid maintainPartitions input: ${describeIssues(parsed.error)}`);
  const input = parsed.data;
  const scheduleId = maintenanceScheduleId(input.database);
  const spec = { intervals: [{ every: opts.every ?? '1d' }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'maintainPartitions',
    workflowId: scheduleId,
    taskQueue: opts.taskQueue ?? defaultTaskQueue(),
    args: [input],
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      // A run still going when the next is due is enough; a run missed while the server was down is made up once.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1d' },
      memo: {
        what:
          `keeps ${input.premake} partitions ahead for switched-over tables in ${input.database}/${input.schema}` +
          (input.retention ? `; retention: ${input.retention.action} partitions older than ${input.retention.keep}` : ''),
      },
    });
    return { scheduleId, created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
    return { scheduleId, created: false };
  }
}

/**
 * The command's options as the schedule's input (validated by ensureMaintenanceSchedule):
 * `--keep "7 years" [--retention-action detach|drop] [--archive-schema archive] [--dry-run]`
 * add retention; `--retention-action` or `--archive-schema` without `--keep` is refused.
 */
export function scheduleArgs(args: string[]): { input: Record<string, unknown>; every: Duration; trigger: boolean } {
  const { values } = parseArgs({
    args,
    options: {
      database: { type: 'string', default: 'default' },
      schema: { type: 'string', default: 'public' },
      premake: { type: 'string', default: '6' },
      'default-partition': { type: 'boolean', default: false },
      every: { type: 'string', default: '1d' },
      trigger: { type: 'boolean', default: false },
      keep: { type: 'string' },
      'retention-action': { type: 'string' },
      'archive-schema': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const retention = {
    keep: values.keep,
    ...(values['retention-action'] !== undefined ? { action: values['retention-action'] } : {}),
    ...(values['archive-schema'] !== undefined ? { archiveSchema: values['archive-schema'] } : {}),
  };
  if (values.keep === undefined && Object.keys(retention).length > 1) {
    throw new Error('--retention-action and --archive-schema belong to retention: give --keep too (e.g. --keep "7 years")');
  }
  const input = {
    database: values.database,
    schema: values.schema,
    premake: Number(values.premake),
    defaultPartition: values['default-partition'],
    ...(values.keep !== undefined ? { retention } : {}),
    ...(values['dry-run'] ? { dryRun: true } : {}),
  };
  return { input, every: values.every as Duration, trigger: !!values.trigger };
}

async function run() {
  const values = scheduleArgs(process.argv.slice(2));
  const client = await connectClient();
  const { scheduleId, created } = await ensureMaintenanceSchedule(client, { every: values.every, input: values.input });
  if (values.trigger) await client.schedule.getHandle(scheduleId).trigger();
  console.log(`${created ? 'created' : 'updated'} schedule ${scheduleId} (every ${values.every}${values.trigger ? ', triggered once now' : ''})`);
  console.log(`  see it:  npm run temporal -- schedule describe --schedule-id ${scheduleId}`);
  console.log(`  run now: npm run temporal -- schedule trigger --schedule-id ${scheduleId}`);
  await client.connection.close();
}

if (require.main === module) {
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
