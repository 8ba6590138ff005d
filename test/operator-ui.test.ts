// The Temporal UI, in a real browser (Debian's chromium driven by playwright-core), at a
// switchover waiting for approval: the summary and details it was started with, the activity
// summaries, and the current details with the verification report and the approve command.
// The screenshot goes to the run's temp folder; with UPDATE_DOCS=1 it replaces the README's docs/operator-ui.png.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startSwitchover } from '../bin/client';
import { seed } from '../demo/seed';
import { statusQuery } from '../src/shared';
import { createTestDb, startTestWorker, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = process.env.UPDATE_DOCS ? join(__dirname, '..', 'docs', 'operator-ui.png') : join(process.env.PS_TEST_DIR!, 'operator-ui.png');
let db: TestDb;
let w: TestWorker;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  db = await createTestDb();
  await seed(db.pool, { rows: 1000, years: 1 });
  w = await startTestWorker({ default: db.url });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--headless'],
  });
});
afterAll(async () => {
  await browser?.close();
  await w?.stop();
  await db?.drop();
});

/** Text of every frame of the page (the UI renders markdown summaries and details in iframes). */
async function frameTexts(page: Page): Promise<string[]> {
  return Promise.all(page.frames().map((f) => f.evaluate(() => document.body?.innerText ?? '').catch(() => '')));
}

test('the UI shows the summary, the current details and the activity summaries of a switchover waiting for approval', async () => {
  const workflowId = uniqueId('switchover-revenues-expenses');
  const handle = await startSwitchover(
    w.client,
    {
      tables: [
        { table: 'revenues', partitionKey: 'occurred_at', interval: 'month' },
        { table: 'expenses', partitionKey: 'occurred_at', interval: 'month' },
      ],
      batchSize: 250,
    },
    { workflowId, taskQueue: w.taskQueue },
  );
  await waitFor(async () => (await handle.query(statusQuery)).phase === 'awaiting_approval', 'awaiting_approval');

  const page = await browser!.newPage({ viewport: { width: 1400, height: 1150 } });
  await page.goto(`${process.env.PS_TEST_TEMPORAL_UI}/namespaces/default/workflows/${workflowId}`, { waitUntil: 'domcontentloaded' });
  await page.getByText('User Metadata', { exact: true }).click();

  // The activity summaries, as the "Events with Metadata" list shows them.
  for (const summary of [
    'preflight revenues, expenses: catalog checks and plan',
    'backup revenues → revenues_backup',
    'copy revenues id 1..500 (stream 1/2)',
    'copy expenses id 501..1000+ (stream 2/2)',
    'verify expenses: row counts, and every row written during the switchover compared row by row',
  ]) {
    await page.getByText(summary, { exact: true }).waitFor({ timeout: 30000 });
  }
  // Summary, details and current details are markdown rendered in frames.
  const texts = await waitFor(
    async () => {
      const t = await frameTexts(page);
      return t.some((x) => x.includes('Verification: PASSED')) && t;
    },
    'the current details in the UI',
    30000,
  );
  const all = texts.join('\n');
  expect(all).toContain('partition revenues, expenses (default/public)');
  expect(all).toContain('Tables: revenues by occurred_at per month; expenses by occurred_at per month');
  const details = texts.find((x) => x.includes('Verification: PASSED'))!;
  expect(details).toContain('Switchover: awaiting_approval');
  expect(details).toMatch(/revenues\s+1,000\s+1,000\s+not summed \(incremental\)\s+0 \(0 written rows\)\s+ok/);
  expect(details).toContain(`temporal workflow signal --workflow-id ${workflowId} \\\n  --name approve`);

  mkdirSync(join(__dirname, '..', 'docs'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  await page.close();
  await handle.signal('reject', { by: 'ui-test', reason: 'screenshot taken' });
  expect((await handle.result()).outcome).toBe('rejected');
});
