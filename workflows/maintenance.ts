// Partition maintenance: for every table a switchover cut over, keep `premake` partitions ready
// beyond the current period (and optionally a default partition). Run by a Temporal Schedule
// (bin/schedule-maintenance.ts); each run is idempotent, so a missed or doubled run is harmless.
// With `retention`, partitions wholly older than `keep` are then detached or dropped (a dry run
// only lists them, and makes no partition either).
import { proxyActivities, setCurrentDetails, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { PartitionsResult } from '../activities/maintain-partitions';
import type { RetentionResult } from '../activities/retention';
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
  /** With `retention`: per table, what was detached or dropped (dry run: would be) and what was left, with why. */
  retention?: RetentionResult[];
}

function details(input: { database: string; schema: string }, tables: PartitionsResult[], retention: RetentionResult[]): string {
  const made = tables.map((t) => `- ${t.table}: ${t.created.length ? `created ${t.created.join(', ')}` : 'nothing missing'}; ready until ${t.coveredUntil}`);
  const retired = retention.map(
    (r) =>
      `- ${r.table}: ${r.dryRun ? 'would retire' : 'retired'} ${r.retired.map((a) => `${a.partition} (${a.action}, ${a.rows} rows)`).join(', ') || 'nothing'}` +
      ` before ${r.cutoff}${r.kept.length ? `; left ${r.kept.map((k) => k.partition).join(', ')}` : ''}`,
  );
  return `## Partition maintenance (${input.database}/${input.schema})\n\n${[...made, ...retired].join('\n')}`;
}

export async function maintainPartitions(raw: unknown): Promise<MaintenanceReport> {
  const input = parseInput(maintenanceInput, raw, 'maintainPartitions');
  const plans = await acts.switchedOverTables.executeWithOptions(
    { ...actOpts, summary: `partitions: find switched-over tables in ${input.database}/${input.schema}` },
    [input.database, input.schema, input.tables],
  );
  const tables: PartitionsResult[] = [];
  const retention: RetentionResult[] = [];
  for (const tp of plans) {
    if (!input.dryRun) {
      const r = await acts.ensurePartitions.executeWithOptions(
        {
          ...actOpts,
          summary: `partitions ${tp.table}: ${input.premake} ${tp.interval}s ahead${input.defaultPartition ? ' + default' : ''}`,
        },
        [input.database, tp, { premake: input.premake, defaultPartition: input.defaultPartition, lockTimeoutMs: input.lockTimeoutMs }],
      );
      tables.push(r);
    }
    if (input.retention) {
      const r = await acts.applyRetention.executeWithOptions(
        { ...actOpts, summary: `retention ${tp.table}: keep ${input.retention.keep}, ${input.retention.action}${input.dryRun ? ' (dry run)' : ''}` },
        [input.database, tp, { retention: input.retention, dryRun: input.dryRun, lockTimeoutMs: input.lockTimeoutMs }],
      );
      retention.push(r);
    }
    setCurrentDetails(details(input, tables, retention));
  }
  return { database: input.database, schema: input.schema, tables, ...(input.retention ? { retention } : {}) };
}
