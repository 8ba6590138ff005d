// The history split's pure part pinned (src/splitplan.ts, src/splitsql.ts): the periods up to the
// cutoff with pmin first, the names, and every statement as an exact string; the input schema.
import { describeIssues, splitHistoryInput } from '../src/input';
import { splitNames, splitPeriods, type SplitPlan } from '../src/splitplan';
import * as s from '../src/splitsql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('amount', 'bigint'), { owner: 'app' });
const plan: SplitPlan = {
  schema: 'public',
  table: 'revenues',
  partitionKey: 'occurred_at',
  interval: 'month',
  cutoff: '2024-03-01',
  names: splitNames('revenues', 'revenues_history'),
  periods: splitPeriods('revenues', 'month', '2024-01-15', '2024-03-01'),
  keyIndexExisting: null,
  rowsEstimated: 100,
  dataRange: { min: '2024-01-15', max: '2024-02-10' },
  indexes: [{ name: 'revenues_amount_idx', unique: false, using: 'USING btree (amount)' }],
  foreignKeys: [{ name: 'revenues_org_fkey', definition: 'FOREIGN KEY (amount) REFERENCES orgs(id)' }],
  tp,
};
const [pmin, jan] = plan.periods;

test('periods: pmin, then every period from the oldest key up to the cutoff; names', () => {
  expect(plan.periods).toEqual([
    { name: 'revenues_pmin', from: 'MINVALUE', to: '2024-01-01' },
    { name: 'revenues_p202401', from: '2024-01-01', to: '2024-02-01' },
    { name: 'revenues_p202402', from: '2024-02-01', to: '2024-03-01' },
  ]);
  // An empty history: pmin alone, up to the cutoff.
  expect(splitPeriods('t', 'year', null, '2025-01-01')).toEqual([{ name: 't_pmin', from: 'MINVALUE', to: '2025-01-01' }]);
  expect(() => splitPeriods('t', 'month', '2024-01-01', '2024-03-15')).toThrow(/not the start of a month/);
  expect(plan.names).toMatchObject({
    split: 'revenues_split',
    historyLegacy: 'revenues_history_legacy',
    historyCheck: 'revenues_history_split_bound',
    keyIndex: 'revenues_history_split_key',
  });
});

test('the split tables, the mirror, the CHECK and the key index', () => {
  expect(s.splitParentSql(plan)).toEqual([
    'CREATE TABLE "public"."revenues_split" (LIKE "public"."revenues" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE ("occurred_at")',
    'ALTER TABLE "public"."revenues_split" ADD PRIMARY KEY ("id", "occurred_at")',
    'ALTER TABLE "public"."revenues_split" OWNER TO "app"',
  ]);
  expect(s.periodTableSql(plan, pmin)).toEqual([
    `CREATE TABLE "public"."revenues_pmin" PARTITION OF "public"."revenues_split" FOR VALUES FROM (MINVALUE) TO ('2024-01-01 00:00:00+00') WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)`,
    `ALTER TABLE "public"."revenues_pmin" ADD CONSTRAINT "revenues_pmin_bound" CHECK ("occurred_at" IS NOT NULL AND "occurred_at" < '2024-01-01 00:00:00+00')`,
    'ALTER TABLE "public"."revenues_pmin" OWNER TO "app"',
  ]);
  expect(s.periodBoundExpr(plan, jan)).toBe(
    `"occurred_at" IS NOT NULL AND "occurred_at" >= '2024-01-01 00:00:00+00' AND "occurred_at" < '2024-02-01 00:00:00+00'`,
  );
  const mirror = s.splitMirrorSql(plan);
  expect(mirror[0]).toMatch(/^CREATE OR REPLACE FUNCTION "public"."revenues_split_mirror"\(\) RETURNS trigger/);
  expect(mirror[0]).toContain('INSERT INTO "public"."revenues_split" ("id", "occurred_at", "amount") VALUES (NEW."id", NEW."occurred_at", NEW."amount")');
  expect(mirror[0]).toContain('ON CONFLICT ("id", "occurred_at") DO UPDATE SET "amount" = EXCLUDED."amount";');
  expect(mirror.slice(1)).toEqual([
    'REVOKE ALL ON FUNCTION "public"."revenues_split_mirror"() FROM PUBLIC',
    'CREATE OR REPLACE TRIGGER "ps_split_mirror" AFTER INSERT OR UPDATE OR DELETE ON "public"."revenues_history" FOR EACH ROW EXECUTE FUNCTION "public"."revenues_split_mirror"()',
    'ALTER TABLE "public"."revenues_history" ENABLE ALWAYS TRIGGER "ps_split_mirror"',
  ]);
  expect(s.historyCheckSql(plan)).toEqual({
    add: `ALTER TABLE "public"."revenues_history" ADD CONSTRAINT "revenues_history_split_bound" CHECK ("occurred_at" IS NOT NULL AND "occurred_at" < '2024-03-01 00:00:00+00') NOT VALID`,
    validate: 'ALTER TABLE "public"."revenues_history" VALIDATE CONSTRAINT "revenues_history_split_bound"',
  });
  expect(s.keyIndexSql(plan)).toBe('CREATE INDEX CONCURRENTLY "revenues_history_split_key" ON "public"."revenues_history" ("occurred_at", "id")');
});

test('the copy batch, the verification, the indexes and foreign keys', () => {
  expect(s.splitBatchSql(plan, jan, true)).toBe(
    [
      'WITH batch AS (',
      '  SELECT "id", "occurred_at", "amount" FROM "public"."revenues_history"',
      `  WHERE "occurred_at" IS NOT NULL AND "occurred_at" >= '2024-01-01 00:00:00+00' AND "occurred_at" < '2024-02-01 00:00:00+00' AND "occurred_at" >= $1::timestamp with time zone AND ("occurred_at", "id") > ($1::timestamp with time zone, $2::bigint)`,
      '  ORDER BY "occurred_at", "id" LIMIT $3 FOR SHARE',
      '), ins AS (',
      '  INSERT INTO "public"."revenues_p202401" ("id", "occurred_at", "amount") SELECT "id", "occurred_at", "amount" FROM batch ON CONFLICT DO NOTHING RETURNING 1',
      ')',
      'SELECT (SELECT count(*) FROM batch)::int AS rows, (SELECT count(*) FROM ins)::int AS inserted,',
      '  (SELECT json_build_array("occurred_at"::text, "id"::text) FROM batch ORDER BY "occurred_at" DESC, "id" DESC LIMIT 1) AS last',
    ].join('\n'),
  );
  expect(s.splitBatchSql(plan, pmin, false).split('\n').slice(2, 4)).toEqual([
    `  WHERE "occurred_at" IS NOT NULL AND "occurred_at" < '2024-01-01 00:00:00+00'`,
    '  ORDER BY "occurred_at", "id" LIMIT $1 FOR SHARE',
  ]);
  expect(s.periodVerifySql(plan, jan)).toEqual({
    history:
      `SELECT count(*)::bigint AS rows, coalesce(sum(hash_record_extended(ROW("id", "occurred_at", "amount"), 0)), 0)::text AS row_hash FROM "public"."revenues_history" ` +
      `WHERE "occurred_at" IS NOT NULL AND "occurred_at" >= '2024-01-01 00:00:00+00' AND "occurred_at" < '2024-02-01 00:00:00+00'`,
    period: `SELECT count(*)::bigint AS rows, coalesce(sum(hash_record_extended(ROW("id", "occurred_at", "amount"), 0)), 0)::text AS row_hash FROM "public"."revenues_p202401"`,
  });
  expect(s.periodIndexSql(plan, jan, plan.indexes[0], 0)).toEqual({
    name: 'revenues_p202401_i0',
    sql: 'CREATE INDEX CONCURRENTLY "revenues_p202401_i0" ON "public"."revenues_p202401" USING btree (amount)',
  });
  expect(s.periodForeignKeySql(plan, jan, plan.foreignKeys[0])).toEqual({
    add: 'ALTER TABLE "public"."revenues_p202401" ADD CONSTRAINT "revenues_org_fkey" FOREIGN KEY (amount) REFERENCES orgs(id) NOT VALID',
    validate: 'ALTER TABLE "public"."revenues_p202401" VALIDATE CONSTRAINT "revenues_org_fkey"',
  });
  expect(s.historyRangeSql(plan, 'revenues_history')).toBe(
    'SELECT min("occurred_at")::date::text AS min, max("occurred_at")::date::text AS max FROM "public"."revenues_history"',
  );
});

test('the cutover, the reverse mirror, rollback before and after cutover, cleanup', () => {
  expect(s.splitLockSql(plan, ['revenues_split'])).toBe('LOCK TABLE "public"."revenues", "public"."revenues_split" IN ACCESS EXCLUSIVE MODE');
  const one = { ...plan, periods: [jan] };
  expect(s.splitCutoverSql(one)).toEqual([
    'DROP TRIGGER "ps_split_mirror" ON "public"."revenues_history"',
    'DROP FUNCTION "public"."revenues_split_mirror"()',
    'ALTER TABLE "public"."revenues_split" DETACH PARTITION "public"."revenues_p202401"',
    'DROP TABLE "public"."revenues_split"',
    'ALTER TABLE "public"."revenues" DETACH PARTITION "public"."revenues_history"',
    'ALTER TABLE "public"."revenues_history" RENAME TO "revenues_history_legacy"',
    `ALTER TABLE "public"."revenues" ATTACH PARTITION "public"."revenues_p202401" FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')`,
    'ALTER TABLE "public"."revenues_p202401" DROP CONSTRAINT "revenues_p202401_bound"',
    'CREATE OR REPLACE TRIGGER "ps_split_back" AFTER INSERT OR UPDATE OR DELETE ON "public"."revenues_p202401" FOR EACH ROW EXECUTE FUNCTION "public"."revenues_split_back"()',
    'ALTER TABLE "public"."revenues_p202401" ENABLE ALWAYS TRIGGER "ps_split_back"',
  ]);
  const back = s.backFunctionSql(plan);
  expect(back[0]).toContain('INSERT INTO "public"."revenues_history_legacy" ("id", "occurred_at", "amount") VALUES');
  expect(back[1]).toBe('REVOKE ALL ON FUNCTION "public"."revenues_split_back"() FROM PUBLIC');
  expect(s.rollbackBeforeCutoverSql(plan, true)).toEqual([
    'DROP TRIGGER IF EXISTS "ps_split_mirror" ON "public"."revenues_history"',
    'DROP FUNCTION IF EXISTS "public"."revenues_split_mirror"()',
    'DROP FUNCTION IF EXISTS "public"."revenues_split_back"()',
    'DROP TABLE "public"."revenues_split"',
    'ALTER TABLE "public"."revenues_history" DROP CONSTRAINT IF EXISTS "revenues_history_split_bound"',
  ]);
  expect(s.rollbackAfterCutoverSql(plan, ['revenues_p202401'])).toEqual([
    'DROP FUNCTION IF EXISTS "public"."revenues_split_back"() CASCADE',
    'ALTER TABLE "public"."revenues" DETACH PARTITION "public"."revenues_p202401"',
    'ALTER TABLE "public"."revenues_history_legacy" RENAME TO "revenues_history"',
    `ALTER TABLE "public"."revenues" ATTACH PARTITION "public"."revenues_history" FOR VALUES FROM (MINVALUE) TO ('2024-03-01 00:00:00+00')`,
    'ALTER TABLE "public"."revenues_history" DROP CONSTRAINT IF EXISTS "revenues_history_split_bound"',
    'DROP TABLE "public"."revenues_p202401"',
  ]);
  expect(s.splitCleanupSql(plan)).toEqual({
    triggers: 'DROP FUNCTION IF EXISTS "public"."revenues_split_back"() CASCADE',
    legacy: 'DROP TABLE "public"."revenues_history_legacy"',
  });
  expect(s.dropSplitIndexSql(plan)).toBe('DROP INDEX IF EXISTS "public"."revenues_history_split_key"');
});

test('the input: defaults, and a bad field named', () => {
  expect(splitHistoryInput.parse({ table: 'revenues' })).toEqual({
    database: 'default',
    schema: 'public',
    table: 'revenues',
    batchSize: 10000,
    pauseMs: 0,
    adaptive: true,
    lockTimeoutMs: 2000,
    dryRun: false,
    mode: 'split',
  });
  const bad = splitHistoryInput.safeParse({ table: 'revenues', mode: 'merge', retention: { keep: '7 parsecs' } });
  expect(describeIssues(bad.error!)).toMatch(/retention\.keep: must be a count and a unit.*; mode: Invalid option/);
  expect(splitHistoryInput.safeParse({}).success).toBe(false);
});
