// Client side: connect with the standard Temporal variables and start a switchover the way
// operators do (input checked locally first, a readable workflow id, a static summary).
import { readFileSync } from 'node:fs';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { taskQueue } from '../src/config';
import { describeIssues, switchoverInput, type SwitchoverInputRaw } from '../src/input';

export async function connectClient(address?: string): Promise<Client> {
  const config = loadClientConnectConfig();
  const connection = await Connection.connect({
    ...config.connectionOptions,
    address: address ?? process.env.TEMPORAL_ADDRESS ?? config.connectionOptions.address ?? 'localhost:7233',
  } as Parameters<typeof Connection.connect>[0]);
  return new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? config.namespace ?? 'default' });
}

/** `switchover-<database>-<schema>-<tables>`: one id per set of tables, so a duplicate start is refused by Temporal. */
export function defaultWorkflowId(input: ReturnType<typeof switchoverInput.parse>): string {
  const kind = input.dryRun ? 'dryrun' : input.mode === 'cleanup' ? 'cleanup' : 'switchover';
  return `${kind}-${input.database}-${input.schema}-${input.tables.map((t) => t.table).join('-')}`;
}

export async function startSwitchover(
  client: Client,
  raw: SwitchoverInputRaw,
  opts: { workflowId?: string; taskQueue?: string } = {},
): Promise<WorkflowHandle> {
  const parsed = switchoverInput.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid switchover input: ${describeIssues(parsed.error)}`);
  const input = parsed.data;
  const tables = input.tables.map((t) => `${t.table} by ${t.partitionKey} per ${t.interval}`);
  return client.workflow.start('switchover', {
    taskQueue: opts.taskQueue ?? taskQueue(),
    workflowId: opts.workflowId ?? defaultWorkflowId(input),
    args: [raw],
    staticSummary: `${input.dryRun ? 'Dry run: ' : input.mode === 'cleanup' ? 'Cleanup: ' : ''}partition ${input.tables.map((t) => t.table).join(', ')} (${input.database}/${input.schema})`,
    staticDetails: [
      `Tables: ${tables.join('; ')}`,
      `Database target: ${input.database}, schema ${input.schema}`,
      `Backup: ${input.backup}; batch size ${input.batchSize}; parallelism ${input.throttle.parallelism}`,
      `Approval: ${input.approval.required ? `required within ${input.approval.timeout}${input.approval.approvers.length ? ` from ${input.approval.approvers.join(', ')}` : ''}, on timeout ${input.approval.onTimeout}` : 'not required'}`,
    ].join('\n\n'),
  });
}

async function run() {
  const file = process.argv[2];
  if (!file) throw new Error('usage: npm run start-switchover -- <input.json> [--workflow-id ID]');
  const idFlag = process.argv.indexOf('--workflow-id');
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  const client = await connectClient();
  const handle = await startSwitchover(client, raw, { workflowId: idFlag > 0 ? process.argv[idFlag + 1] : undefined });
  console.log(`started ${handle.workflowId}`);
  console.log(`  status:  npm run temporal -- workflow query --workflow-id ${handle.workflowId} --type status`);
  console.log(`  approve: npm run temporal -- workflow signal --workflow-id ${handle.workflowId} --name approve --input '{"by":"<you>"}'`);
  await client.connection.close();
}

if (require.main === module) {
  run().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
