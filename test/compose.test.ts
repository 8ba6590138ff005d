// docker-compose.yml is what a team would run. No Docker engine runs here, so the file is parsed
// and checked against what the code expects: pinned official images, Temporal on PostgreSQL,
// our search attributes registered, workers with replicas, graceful stop and metrics.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES } from '../src/shared';
import { durationMs } from '../workflows/util';

const compose = parse(readFileSync(join(__dirname, '..', 'docker-compose.yml'), 'utf8'));
const services: Record<string, any> = compose.services;

test('every service uses a pinned image and depends only on defined services', () => {
  expect(Object.keys(services).sort()).toEqual(['app-db', 'temporal', 'temporal-db', 'temporal-search-attributes', 'temporal-ui', 'worker']);
  for (const [name, s] of Object.entries(services)) {
    expect([name, s.image]).toEqual([name, expect.stringMatching(/^[\w./-]+:\d+(\.\d+)+[\w.-]*$/)]);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) expect(services).toHaveProperty([d]);
  }
});

test('Temporal runs on PostgreSQL with its UI, and a one-shot job registers our search attributes', () => {
  const temporal = services.temporal;
  expect(temporal.image).toMatch(/^temporalio\/auto-setup:/);
  expect(temporal.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'temporal-db' });
  expect(services['temporal-db'].image).toMatch(/^postgres:/);
  expect(temporal.ports).toContain('7233:7233');

  expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:/);
  expect(services['temporal-ui'].environment.TEMPORAL_ADDRESS).toBe('temporal:7233');

  const sa = services['temporal-search-attributes'];
  expect(sa.image).toMatch(/^temporalio\/admin-tools:/);
  expect(sa.restart).toBe('no');
  const script = sa.command.join('\n');
  expect(script).toContain('temporal operator search-attribute create --namespace default --name "$$name" --type "$$type"');
  for (const a of SEARCH_ATTRIBUTES) expect(script).toContain(`${a.name}:${a.type}`);
});

test('the worker: npm ci && npm run worker, two replicas, configured by the standard variables, stopped gracefully', () => {
  const w = services.worker;
  expect(w.image).toMatch(/^node:20\./);
  expect(w.command.join(' ')).toMatch(/npm ci .*&& exec npm run worker$/);
  expect(w.deploy.replicas).toBeGreaterThanOrEqual(2);
  expect(w.environment).toMatchObject({
    TEMPORAL_ADDRESS: 'temporal:7233',
    TEMPORAL_NAMESPACE: 'default',
    TASK_QUEUE: DEFAULT_TASK_QUEUE,
    DATABASE_URL: expect.stringMatching(/^postgres:\/\/[^@]+@app-db:5432\/\w+$/),
    PROMETHEUS_BIND_ADDRESS: '0.0.0.0:9464',
  });
  expect(w.depends_on['temporal-search-attributes'].condition).toBe('service_completed_successfully');
  expect(w.depends_on['app-db'].condition).toBe('service_healthy');
  // Docker sends SIGTERM, then SIGKILL after stop_grace_period: the worker's drain must fit in it.
  expect(durationMs(w.stop_grace_period)).toBeGreaterThan(durationMs(w.environment.WORKER_SHUTDOWN_GRACE_TIME));
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
  // `exec` makes tsx, not a shell, receive the SIGTERM that npm forwards.
  expect(pkg.scripts.worker).toBe('exec tsx bin/worker.ts');
  expect(pkg.dependencies.tsx).toBeDefined();
});
