// The fleet's pure rules (src/fleet.ts, src/fleet-details.ts): groups, slots per server, counts,
// which workflow is a fleet's child, the input's refusals, the current details.
import { childId, countPhases, fleetDatabaseOf, fleetInput, mayStart, rolloutGroups, type FleetStatus } from '../src/rollout';
import { progressBar, renderFleetDetails } from '../src/fleet-details';
import { describeIssues } from '../src/input';

const names = (n: number) => Array.from({ length: n }, (_, i) => `db${i}`);

test('canary first, then waves of waveSize; the last wave holds the rest', () => {
  expect(rolloutGroups(names(12), { canary: 1, waveSize: 4 })).toEqual([
    ['db0'],
    ['db1', 'db2', 'db3', 'db4'],
    ['db5', 'db6', 'db7', 'db8'],
    ['db9', 'db10', 'db11'],
  ]);
  expect(rolloutGroups(names(3), { canary: 2, waveSize: 4 })).toEqual([['db0', 'db1'], ['db2']]);
  expect(rolloutGroups(names(1), { canary: 3, waveSize: 4 })).toEqual([['db0']]);
  expect(rolloutGroups(names(200), { canary: 1, waveSize: 4 })).toHaveLength(51);
});

test('a database may start while the fleet and its server have a slot', () => {
  const t = (name: string, server: string) => ({ name, database: name, server });
  const rollout = { concurrency: 3, perServer: 2 };
  expect(mayStart(t('x', 'A'), [], rollout)).toBe(true);
  expect(mayStart(t('x', 'A'), [t('a', 'A')], rollout)).toBe(true);
  expect(mayStart(t('x', 'A'), [t('a', 'A'), t('b', 'A')], rollout)).toBe(false);
  expect(mayStart(t('x', 'B'), [t('a', 'A'), t('b', 'A')], rollout)).toBe(true);
  expect(mayStart(t('x', 'C'), [t('a', 'A'), t('b', 'A'), t('c', 'B')], rollout)).toBe(false);
});

test('counts per phase, an ended database under its outcome', () => {
  expect(
    countPhases({
      a: { phase: 'copy' },
      b: { phase: 'done', outcome: 'done' },
      c: { phase: 'pending' },
      d: { phase: 'failed', outcome: 'failed' },
      e: { phase: 'copy' },
    }),
  ).toEqual({
    copy: 2,
    done: 1,
    pending: 1,
    failed: 1,
  });
});

test("a fleet's child is the switchover whose id is `<parent id>.<database>`", () => {
  expect(childId('f1', 'tenant_a')).toBe('f1.tenant_a');
  expect(fleetDatabaseOf('f1.tenant_a', 'f1')).toBe('tenant_a');
  expect(fleetDatabaseOf('f1.default/tenant_a', 'f1')).toBe('default/tenant_a');
  expect(fleetDatabaseOf('f1-dry-run', 'f1')).toBeNull();
  expect(fleetDatabaseOf('f1.tenant_a', undefined)).toBeNull();
});

const refusal = (raw: unknown) => {
  const r = fleetInput.safeParse(raw);
  return r.success ? '' : describeIssues(r.error);
};
const TABLES = [{ table: 'orders', partitionKey: 'placed_at', interval: 'month' }];

test('bad input: each refusal names its field', () => {
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] } })).toBe('');
  expect(refusal({ tables: TABLES })).toMatch(/^targets: /);
  expect(refusal({ tables: TABLES, targets: { databases: [] } })).toMatch(/targets.databases: must list at least one database/);
  expect(refusal({ tables: TABLES, targets: { databases: ['a', 'a'] } })).toMatch(/targets.databases.1: database "a" is listed twice/);
  expect(refusal({ tables: TABLES, targets: { databases: ['a; drop'] } })).toMatch(/targets/);
  expect(refusal({ tables: TABLES, targets: { server: 'default' } })).toMatch(/targets: must be/);
  expect(refusal({ tables: TABLES, database: 'x', targets: { databases: ['a'] } })).toMatch(/database: a fleet names its databases in "targets"/);
  expect(refusal({ tables: TABLES, mode: 'cleanup', targets: { databases: ['a'] } })).toMatch(/^mode: /);
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] }, rollout: { concurrency: 0 } })).toMatch(/rollout.concurrency/);
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] }, rollout: { soak: '30 minutes' } })).toMatch(/rollout.soak: must be a duration/);
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] }, approval: { scope: 'region' } })).toMatch(/approval.scope/);
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] }, approval: { scope: 'wave', required: false } })).toMatch(
    /approval.scope: scope "wave" needs approval.required true/,
  );
  expect(refusal({ tables: TABLES, targets: { databases: ['a'] }, onFailure: 'ignore' })).toMatch(/^onFailure: /);
});

test('current details: progress bar, what the fleet waits for, one row per database', () => {
  expect(progressBar(0, 4)).toBe('[--------------------] 0/4');
  expect(progressBar(2, 4)).toBe('[##########----------] 2/4');
  const s: FleetStatus = {
    phase: 'halted',
    databases: {
      a: { phase: 'done', outcome: 'done', rows: 300, cutoverLockMs: 7 },
      b: { phase: 'failed', outcome: 'failed', error: 'no primary key' },
      c: { phase: 'pending' },
    },
    counts: { done: 1, failed: 1, pending: 1 },
    group: 1,
    groups: 3,
    halted: { databases: ['b'], since: '2026-12-07T10:00:00.000Z' },
    ignoredSignals: [],
  };
  const md = renderFleetDetails(s, { workflowId: 'f1' });
  expect(md).toContain('## Fleet f1: halted');
  expect(md).toContain('[#############-------] 2/3 databases ended');
  expect(md).toContain('**Halted** since 2026-12-07T10:00:00.000Z: b failed');
  expect(md).toContain('--name resume');
  expect(md).toContain('| a | done | 300 | 7 ms | done |');
  expect(md).toContain('| b | failed |  |  | failed: no primary key |');
  expect(md).toContain('| c | pending |  |  |  |');
});
