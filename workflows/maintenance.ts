// Partition maintenance: for every table a switchover cut over, keep `premake` partitions ready
// beyond the current period (and optionally a default partition). Run by a Temporal Schedule
// (bin/schedule-maintenance.ts); each run is idempotent, so a missed or doubled run is harmless.
import { proxyActivities, setCurrentDetails, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PartitionsResult } from '../activities/maintain-partitions';
import { maintenanceInput } from '../src/input';
import { parseInput } from './util';

const actOpts: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  // Every activity heartbeats every 2 s (activities/index.ts): a lost worker is noticed within 10 s.
  heartbeatTimeout: '10s',
  // A lock timeout behind a long transaction is retried with backoff.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
};
const acts = proxyActivities<Activities>(actOpts);

export interface MaintenanceReport {
  database: string;
  schema: string;
  tables: PartitionsResult[];
}

export async function maintainPartitions(raw: unknown): Promise<MaintenanceReport> {
  const input = parseInput(maintenanceInput, raw, 'maintainPartitions');
  const plans = await acts.switchedOverTables.executeWithOptions(
    { ...actOpts, summary: `partitions: find switched-over tables in ${input.database}/${input.schema}` },
    [input.database, input.schema, input.tables],
  );
  const tables: PartitionsResult[] = [];
  for (const tp of plans) {
    const r = await acts.ensurePartitions.executeWithOptions(
      {
        ...actOpts,
        summary: `partitions ${tp.table}: ${input.premake} ${tp.interval}s ahead${input.defaultPartition ? ' + default' : ''}`,
      },
      [input.database, tp, { premake: input.premake, defaultPartition: input.defaultPartition, lockTimeoutMs: input.lockTimeoutMs }],
    );
    tables.push(r);
    setCurrentDetails(
      `## Partition maintenance (${input.database}/${input.schema})\n\n` +
        tables
          .map((t) => `- ${t.table}: ${t.created.length ? `created ${t.created.join(', ')}` : 'nothing missing'}; ready until ${t.coveredUntil}`)
          .join('\n'),
    );
  }
  return { database: input.database, schema: input.schema, tables };
}
