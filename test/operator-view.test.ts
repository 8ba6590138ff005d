// What the on-call person sees, through the tools they use: `temporal workflow metadata` (current
// details, handler descriptions), the history's activity summaries, the list query on our search
// attributes, failures that read as sentences, a worker on a namespace without the search
// attributes, and the DBA's audit table and `partition_switchover.latest` view.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { seed } from '../demo/seed';
import { DESCRIPTIONS, statusQuery } from '../src/shared';
import { FAILURE_TYPES } from '../src/errors';
import type { SwitchoverReport } from '../workflows/switchover';
import { createTestDb, startTestWorker, temporalAddress, temporalCli, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';
import { spawnWorker } from './worker-process';

const revenues = { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' };
const expenses = { table: 'expenses', partitionKey: 'occurred_at', interval: 'month' };
const balances = { table: 'daily_cash_balances', partitionKey: 'balance_date', interval: 'month' };
const ROWS = 1000;

let db: TestDb;
let w: TestWorker;
let handle: WorkflowHandle;

beforeAll(async () => {
  db = await createTestDb();
  await seed(db.pool, { rows: ROWS, years: 1 });
  w = await startTestWorker({ default: db.url });
  handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('operator'),
    args: [{ tables: [revenues, expenses], batchSize: 200 }],
  });
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');
});
afterAll(async () => {
  await handle?.terminate().catch(() => undefined);
  await w?.stop();
  await db?.drop();
});

type Payload = { data?: string } | undefined;
const decode = (p: Payload) => (p?.data ? JSON.parse(Buffer.from(p.data, 'base64').toString()) : undefined);
/** Splits a shell command line as `sh` would for our commands (single quotes, `\` line continuations). */
const shellWords = (cmd: string) => [...cmd.replace(/\\\n/g, ' ').matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);

async function history(workflowId: string) {
  return JSON.parse(await temporalCli(['workflow', 'show', '--workflow-id', workflowId, '--output', 'json'])).events as Record<string, any>[];
}

test('`temporal workflow metadata` shows the current details with the verification report, the approve/reject commands and the handler descriptions', async () => {
  const text = await temporalCli(['workflow', 'metadata', '--workflow-id', handle.workflowId]);
  expect(text).toContain('## Switchover: awaiting_approval');
  expect(text).toContain('Tables: revenues, expenses');
  expect(text).toContain('### Verification: PASSED');
  for (const t of ['revenues', 'expenses']) {
    // The default verification: counts, and the rows written during the switchover (none here).
    expect(text).toMatch(new RegExp(`\\| ${t} \\| 1,000 \\| 1,000 \\| not summed \\(incremental\\) \\| 0 \\(0 written rows\\) \\| ok \\|`));
  }
  for (const [name, body] of [
    ['approve', `'{"by":"<you>","comment":"verified"}'`],
    ['reject', `'{"by":"<you>","reason":"..."}'`],
  ]) {
    expect(text).toContain(`temporal workflow signal --workflow-id ${handle.workflowId} \\\n  --name ${name} --input ${body}`);
  }
  const meta = JSON.parse(await temporalCli(['workflow', 'metadata', '--workflow-id', handle.workflowId, '--output', 'json'])).queryResult[0];
  const described = (defs: { name: string; description: string }[]) => Object.fromEntries(defs.map((d) => [d.name, d.description]));
  expect(described(meta.definition.signalDefinitions)).toEqual({
    approve: DESCRIPTIONS.approve,
    reject: DESCRIPTIONS.reject,
    progress: DESCRIPTIONS.progress,
  });
  expect(described(meta.definition.queryDefinitions).status).toBe(DESCRIPTIONS.status);
  expect(meta.currentDetails).toContain('### Waiting for approval');
});

test('the history reads as a log: every activity has a summary naming its stage and table, the copy its key range', async () => {
  const stageOf: Record<string, string> = {
    capabilities: 'start',
    preflight: 'preflight',
    ensureState: 'state',
    claimTables: 'claim',
    recordChecksum: 'checksum',
    backupTable: 'backup',
    prepareTable: 'prepare',
    installTriggers: 'triggers',
    copyRange: 'copy',
    copyRecheck: 'copy',
    buildIndexes: 'index',
    verifyTable: 'verify',
    analyzeTable: 'analyze',
  };
  const scheduled = (await history(handle.workflowId)).filter((e) => e.activityTaskScheduledEventAttributes);
  expect(scheduled.length).toBeGreaterThanOrEqual(18);
  const summaries = scheduled.map((e) => [e.activityTaskScheduledEventAttributes.activityType.name, decode(e.userMetadata?.summary)]);
  for (const [type, summary] of summaries) {
    expect(stageOf[type]).toBeDefined();
    expect(summary).toMatch(new RegExp(`^${stageOf[type]} (revenues|expenses)\\b`));
  }
  expect(summaries.filter(([t]) => t === 'copyRange').map(([, s]) => s)).toEqual([
    'copy revenues id 1..500 (stream 1/2)',
    'copy revenues id 501..1000+ (stream 2/2)',
    'copy expenses id 1..500 (stream 1/2)',
    'copy expenses id 501..1000+ (stream 2/2)',
  ]);
});

test('`temporal workflow list` finds it by SwitchoverPhase and SwitchoverTables', async () => {
  const list = (query: string) => temporalCli(['workflow', 'list', '--query', query, '--output', 'json']);
  const waiting = await waitFor(async () => {
    const out = await list(`SwitchoverPhase='awaiting_approval' AND SwitchoverTables='expenses'`);
    return out.includes(handle.workflowId) && out;
  }, 'the visibility record');
  const row = JSON.parse(waiting).find((r: any) => r.execution.workflowId === handle.workflowId);
  expect(decode(row.searchAttributes.indexedFields.SwitchoverTables)).toEqual(['revenues', 'expenses']);
  expect(await list(`SwitchoverPhase='copy' AND WorkflowId='${handle.workflowId}'`)).not.toContain(handle.workflowId);
});

test('the DBA sees the waiting switchover in partition_switchover.latest', async () => {
  const r = await db.pool.query(`select * from partition_switchover.latest where workflow_id = $1 order by table_name`, [handle.workflowId]);
  expect(r.rows.map((x) => [x.table_name, x.phase, Number(x.rows), x.approved_by])).toEqual([
    ['expenses', 'verified', ROWS, null],
    ['revenues', 'verified', ROWS, null],
  ]);
  for (const x of r.rows) expect(x.started.getTime()).toBeLessThanOrEqual(x.updated.getTime());
});

test('approved with the command from the details: the audit table records every stage with counts, checksums and timings; the view says who approved', async () => {
  const meta = JSON.parse(await temporalCli(['workflow', 'metadata', '--workflow-id', handle.workflowId, '--output', 'json'])).queryResult[0];
  const command = /```\n(temporal workflow signal [^`]*--name approve [^`]*)\n```/.exec(meta.currentDetails)![1];
  const args = shellWords(command.replace('<you>', 'alice')).slice(1);
  await temporalCli(args);
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  expect(report.approval).toMatchObject({ state: 'approved', by: 'alice', comment: 'verified' });

  const audit = (
    await db.pool.query(
      `select stage, rows, sums, row_hash, ms, details, at from partition_switchover.audit
       where workflow_id = $1 and table_name = 'revenues' order by id`,
      [handle.workflowId],
    )
  ).rows;
  const stages = audit.map((a) => a.stage);
  const inOrder = ['PLAN', 'PRE-FLIGHT', 'POST-BACKUP', 'PREPARED', 'TRIGGERS', 'PRE-MIGRATION', 'POST-MIGRATION', 'APPROVAL', 'CUTOVER'];
  expect(stages.filter((x) => inOrder.includes(x))).toEqual(inOrder);
  const counted = audit.filter((a) => ['PRE-FLIGHT', 'POST-BACKUP'].includes(a.stage));
  const money = (await db.pool.query(`select sum(amount_cents)::text as s from revenues`)).rows[0].s;
  for (const a of counted) {
    expect(Number(a.rows)).toBe(ROWS);
    expect(a.sums).toEqual({ amount_cents: money });
    expect(a.row_hash).toBe(counted[0].row_hash);
    expect(a.ms).toBeGreaterThanOrEqual(0);
  }
  // The incremental verification: counts of both sides, and the written rows' hash (none written).
  const verified = audit.filter((a) => ['PRE-MIGRATION', 'POST-MIGRATION'].includes(a.stage));
  expect(verified.map((a) => [Number(a.rows), a.sums, a.row_hash])).toEqual([
    [ROWS, {}, '0'],
    [ROWS, {}, '0'],
  ]);
  expect(verified[1].details).toMatchObject({ ok: true, mode: 'incremental', keysChecked: 0 });
  const cutover = audit.find((a) => a.stage === 'CUTOVER')!;
  expect(cutover.ms).not.toBeNull();
  expect(cutover.details.lockMs).toBeGreaterThan(0);
  expect(audit.find((a) => a.stage === 'APPROVAL')!.details).toMatchObject({ state: 'approved', by: 'alice' });

  const latest = await db.pool.query(`select * from partition_switchover.latest where workflow_id = $1 order by table_name`, [handle.workflowId]);
  expect(latest.rows.map((x) => [x.table_name, x.phase, Number(x.rows), x.approved_by])).toEqual([
    ['expenses', 'cut_over', ROWS, 'alice'],
    ['revenues', 'cut_over', ROWS, 'alice'],
  ]);
});

test('a failure reads as a sentence for the operator, with table, stage and sample ids in its details', async () => {
  // Drift the copy on purpose: once the first batch is in daily_cash_balances_partitioned, delete
  // its first row there (below the triggers, so the legacy table keeps it). Verification must catch it.
  const h = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('drift'),
    // copyMode "lock": no re-check pass after the copy; verify "full": a row deleted behind the
    // triggers is named (the incremental verification sees it only as a count).
    args: [{ tables: [balances], batchSize: 50, copyMode: 'lock', verify: 'full', throttle: { pauseMs: 200, parallelism: 2 }, approval: { required: false } }],
  });
  const deleted = await waitFor(async () => {
    const r = await db.pool.query(
      `delete from daily_cash_balances_partitioned where id = (select min(id) from daily_cash_balances_partitioned) returning id::text`,
    );
    return r.rows[0]?.id as string | undefined;
  }, 'the first copied batch');
  await h.result().catch(() => undefined);

  const failed = (await history(h.workflowId)).find((e) => e.workflowExecutionFailedEventAttributes)!.workflowExecutionFailedEventAttributes.failure;
  expect(failed.applicationFailureInfo.type).toBe('ParityMismatch');
  expect(failed.message).toMatch(
    new RegExp(
      `^verification failed: daily_cash_balances differs in \\S+ \\(ids ${deleted}\\)\\. ` +
        `The legacy table is untouched and authoritative; compare those rows, then start again\\. ` +
        `rollback ${h.workflowId}-rollback completed: daily_cash_balances back to plain \\(was prepared\\)\\.$`,
    ),
  );
  const cause = failed.cause;
  expect(cause.applicationFailureInfo.type).toBe('ParityMismatch');
  expect(decode(cause.applicationFailureInfo.details.payloads[0])).toEqual({
    stage: 'verify',
    tables: [{ table: 'daily_cash_balances', ranges: [expect.any(String)], sampleIds: [deleted] }],
  });
});

test('every failure type we throw is listed, with its meaning, in src/errors.ts and the README', () => {
  const root = join(__dirname, '..');
  const thrown = new Set<string>();
  for (const dir of ['src', 'activities', 'workflows']) {
    for (const f of readdirSync(join(root, dir)).filter((n) => n.endsWith('.ts'))) {
      const code = readFileSync(join(root, dir, f), 'utf8');
      for (const m of code.matchAll(/\bfail\(\s*'(\w+)'/g)) thrown.add(m[1]);
      for (const m of code.matchAll(/ApplicationFailure\.create\(\{\s*type:\s*([^,]+),/g)) for (const q of m[1].matchAll(/'(\w+)'/g)) thrown.add(q[1]);
      for (const m of code.matchAll(/ApplicationFailure\.(?:retryable|nonRetryable)\([^;]*?,\s*'(\w+)'\)/g)) thrown.add(m[1]);
    }
  }
  expect(thrown.size).toBeGreaterThanOrEqual(8);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const type of thrown) {
    expect([type, FAILURE_TYPES[type as keyof typeof FAILURE_TYPES]]).toEqual([type, expect.any(String)]);
    expect(readme).toContain(`| \`${type}\` |`);
  }
});

test('a worker whose namespace lacks the search attributes prints the exact create commands and runs without them', async () => {
  const namespace = uniqueId('no-attrs');
  await temporalCli(['operator', 'namespace', 'create', '--namespace', namespace]);
  await db.pool.query(`create table sa_probe (id bigint primary key, at date not null); insert into sa_probe values (1, '2024-01-01')`);
  const taskQueue = uniqueId('ps-nosa');
  const proc = await spawnWorker({ DATABASE_URL: db.url, TEMPORAL_NAMESPACE: namespace, TASK_QUEUE: taskQueue });
  const connection = await Connection.connect({ address: temporalAddress() });
  try {
    const commands = ['SwitchoverPhase --type Keyword', 'SwitchoverTables --type KeywordList', 'SwitchoverFleet --type Keyword'].map(
      (t) => `temporal operator search-attribute create --namespace ${namespace} --name ${t}`,
    );
    for (const c of commands) expect(proc.output()).toContain(`\n  ${c}\n`);

    const client = new Client({ connection, namespace });
    const h = await client.workflow.start('switchover', {
      taskQueue,
      workflowId: uniqueId('nosa'),
      args: [{ tables: [{ table: 'sa_probe', partitionKey: 'at', interval: 'year' }], dryRun: true }],
    });
    expect((await h.result()).outcome).toBe('dry_run');
    const d = await h.describe();
    expect(Object.keys(d.raw.workflowExecutionInfo?.searchAttributes?.indexedFields ?? {})).not.toContain('SwitchoverPhase');

    // The printed commands are the ones that fix it.
    for (const c of commands) await temporalCli(shellWords(c).slice(1));
    const list = await temporalCli(['operator', 'search-attribute', 'list', '--namespace', namespace]);
    expect(list).toMatch(/SwitchoverPhase\s+Keyword\b/);
    expect(list).toMatch(/SwitchoverTables\s+KeywordList\b/);
  } finally {
    await connection.close();
    expect(await proc.stop('SIGTERM')).toBe(0);
  }
});
