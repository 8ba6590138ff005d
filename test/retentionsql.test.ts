// Retention's pure part pinned (src/retentionsql.ts): keep, bounds, which partitions are retired
// and the statements; the input's retention fields and the schedule command's options.
import { scheduleArgs } from '../bin/schedule-maintenance';
import { describeIssues, maintenanceInput } from '../src/input';
import * as r from '../src/retentionsql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('status', 'text'));

test('keep as an interval; bounds read from the catalog text', () => {
  expect(r.keepInterval('7 years')).toBe('7 years');
  expect(r.keepInterval('1 month')).toBe('1 months');
  expect(() => r.keepInterval('7 parsecs')).toThrow(/retention.keep "7 parsecs"/);
  expect(r.readBounds(`FOR VALUES FROM ('2019-01-01 00:00:00+00') TO ('2019-02-01 00:00:00+00')`)).toEqual({ from: '2019-01-01', to: '2019-02-01' });
  expect(r.readBounds(`FOR VALUES FROM ('2019-01-01') TO ('2019-02-01')`)).toEqual({ from: '2019-01-01', to: '2019-02-01' });
  expect(r.readBounds(`FOR VALUES FROM (MINVALUE) TO ('2019-01-01 00:00:00')`)).toEqual({ from: 'MINVALUE', to: '2019-01-01' });
  expect(r.readBounds('DEFAULT')).toBeNull();
  // A bound at another hour is not one of ours: not read, so never retired.
  expect(r.readBounds(`FOR VALUES FROM ('2019-01-01 05:00:00+00') TO ('2019-02-01 00:00:00+00')`)).toBeNull();
});

test('only period partitions of ours wholly before the cutoff are retired; pmin and foreign ones are reported', () => {
  const b = (from: string, to: string) => `FOR VALUES FROM (${from}) TO (${to})`;
  const children = [
    { name: 'revenues_pmin', bound: b('MINVALUE', `'2018-01-01 00:00:00+00'`) },
    { name: 'revenues_p201802', bound: b(`'2018-02-01 00:00:00+00'`, `'2018-03-01 00:00:00+00'`) },
    { name: 'revenues_p201801', bound: b(`'2018-01-01 00:00:00+00'`, `'2018-02-01 00:00:00+00'`) },
    { name: 'handmade', bound: b(`'2018-03-01 00:00:00+00'`, `'2018-04-01 00:00:00+00'`) },
    { name: 'revenues_p201804', bound: b(`'2018-04-01 00:00:00+00'`, `'2018-05-01 00:00:00+00'`) },
    { name: 'revenues_default', bound: 'DEFAULT' },
    { name: 'revenues_pmax', bound: b(`'2030-01-01 00:00:00+00'`, 'MAXVALUE') },
  ];
  const out = r.retentionCandidates(tp, children, '2018-04-15');
  expect(out.retire).toEqual([
    { partition: 'revenues_p201801', from: '2018-01-01', to: '2018-02-01' },
    { partition: 'revenues_p201802', from: '2018-02-01', to: '2018-03-01' },
  ]);
  expect(out.kept.map((k) => k.partition)).toEqual(['revenues_pmin', 'handmade']);
  expect(out.kept[0].reason).toBe('holds every key before 2018-01-01 (MINVALUE..2018-01-01); retention never detaches or drops it');
  expect(out.straddling).toEqual({ partition: 'revenues_p201804', from: '2018-04-01', to: '2018-05-01' });
  expect(out.kept[1].reason).toBe('2018-03-01..2018-04-01 is not a partition the switchover or maintenance made (its name or range is not ours); left');
  expect(r.ourName(tp, '2024-01-01', '2024-02-01')).toBe('revenues_p202401');
  expect(r.ourName(tp, '2024-01-01', '2024-03-01')).toBeNull();
});

test('statements', () => {
  expect(r.insideKeepSql(tp, 'revenues_p201801', '2019-12-07')).toBe(
    `SELECT EXISTS (SELECT 1 FROM "public"."revenues_p201801" WHERE "occurred_at" >= '2019-12-07 00:00:00+00') AS inside`,
  );
  expect(r.anyRowSql(tp, 'revenues_p201801')).toBe('SELECT EXISTS (SELECT 1 FROM "public"."revenues_p201801") AS any');
  expect(r.detachConcurrentlySql(tp, 'revenues_p201801')).toBe('ALTER TABLE "public"."revenues" DETACH PARTITION "public"."revenues_p201801" CONCURRENTLY');
  expect(r.finalizeDetachSql(tp, 'revenues_p201801')).toBe('ALTER TABLE "public"."revenues" DETACH PARTITION "public"."revenues_p201801" FINALIZE');
  expect(r.archiveSql('public', 'revenues_p201801', 'archive')).toBe('ALTER TABLE "public"."revenues_p201801" SET SCHEMA "archive"');
  expect(r.dropPartitionSql(tp, 'revenues_p201801')).toBe('DROP TABLE "public"."revenues_p201801"');
  expect(r.reattachSql(tp, 'archive', { partition: 'revenues_p201801', from: '2018-01-01', to: '2018-02-01' })).toEqual([
    'ALTER TABLE "archive"."revenues_p201801" SET SCHEMA "public"',
    `ALTER TABLE "public"."revenues" ATTACH PARTITION "public"."revenues_p201801" FOR VALUES FROM ('2018-01-01 00:00:00+00') TO ('2018-02-01 00:00:00+00')`,
  ]);
});

test('retention input: defaults, and each bad field named', () => {
  expect(maintenanceInput.parse({ retention: { keep: '7 years' } }).retention).toEqual({ keep: '7 years', action: 'detach', archiveSchema: 'archive' });
  expect(maintenanceInput.parse({}).dryRun).toBe(false);
  const bad = (v: unknown) => {
    const p = maintenanceInput.safeParse(v);
    return p.success ? 'accepted' : describeIssues(p.error);
  };
  expect(bad({ retention: { keep: '7 parsecs' } })).toMatch(/^retention\.keep: must be a count and a unit, e\.g\. "7 years"/);
  expect(bad({ retention: { keep: '0 days' } })).toMatch(/^retention\.keep: /);
  expect(bad({ retention: { keep: '7 years', archiveSchema: 'arch"ive; drop' } })).toMatch(/^retention\.archiveSchema: must be a plain identifier/);
  expect(bad({ retention: { keep: '7 years', action: 'truncate' } })).toMatch(/^retention\.action: /);
  expect(bad({ retention: { action: 'drop' } })).toMatch(/^retention\.keep: /);
});

test('the schedule command takes the same options', () => {
  const base = ['--database', 'shop', '--every', '12h'];
  expect(scheduleArgs(base).input).toEqual({ database: 'shop', schema: 'public', premake: 6, defaultPartition: false });
  const withRetention = scheduleArgs([...base, '--keep', '7 years', '--retention-action', 'drop', '--archive-schema', 'old', '--dry-run']);
  expect(withRetention.input).toEqual({
    database: 'shop',
    schema: 'public',
    premake: 6,
    defaultPartition: false,
    retention: { keep: '7 years', action: 'drop', archiveSchema: 'old' },
    dryRun: true,
  });
  expect(withRetention.every).toBe('12h');
  expect(maintenanceInput.parse(withRetention.input).retention).toEqual({ keep: '7 years', action: 'drop', archiveSchema: 'old' });
  expect(() => scheduleArgs([...base, '--retention-action', 'drop'])).toThrow(/give --keep too/);
});
