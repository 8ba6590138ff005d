// Partition maintenance's statements pinned as exact strings (src/maintenancesql.ts).
import {
  analyzeSkipLockedSql,
  analyzeSql,
  attachToMaxSql,
  lockForAnalyzeSql,
  belowWhere,
  countWhereSql,
  detachSql,
  inRangeWhere,
  moveBackSql,
  moveOutSql,
} from '../src/maintenancesql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('status', 'text'));

test('rows moved out of a partition and back through the parent', () => {
  const inRange = inRangeWhere(tp, tp.partitions[0]);
  expect(inRange).toBe(`"occurred_at" >= '2024-01-01 00:00:00+00' AND "occurred_at" < '2024-02-01 00:00:00+00'`);
  expect(countWhereSql(tp, 'revenues_default', inRange)).toBe(`SELECT count(*)::bigint AS n FROM "public"."revenues_default" WHERE ${inRange}`);
  const below = belowWhere(tp, '2024-03-01');
  expect(below).toBe(`"occurred_at" < '2024-03-01 00:00:00+00'`);
  expect(moveOutSql(tp, 'revenues_pmax', below)).toBe(
    `CREATE TEMP TABLE ps_moved ON COMMIT DROP AS WITH m AS (DELETE FROM "public"."revenues_pmax" WHERE ${below} RETURNING *) SELECT * FROM m`,
  );
  expect(moveBackSql(tp)).toBe(
    'INSERT INTO "public"."revenues" ("id", "occurred_at", "status") OVERRIDING SYSTEM VALUE SELECT "id", "occurred_at", "status" FROM ps_moved',
  );
});

test('pmax detached and attached again from a later bound; ANALYZE', () => {
  expect(detachSql(tp, 'revenues_pmax')).toBe('ALTER TABLE "public"."revenues" DETACH PARTITION "public"."revenues_pmax"');
  expect(attachToMaxSql(tp, 'revenues_pmax', '2024-03-01')).toBe(
    `ALTER TABLE "public"."revenues" ATTACH PARTITION "public"."revenues_pmax" FOR VALUES FROM ('2024-03-01 00:00:00+00') TO (MAXVALUE)`,
  );
  expect(analyzeSql('"public"."revenues"')).toBe('ANALYZE "public"."revenues"');
  expect(analyzeSkipLockedSql('"public"."revenues"')).toBe('ANALYZE (SKIP_LOCKED) "public"."revenues"');
  expect(lockForAnalyzeSql(['"public"."r_p1"', '"public"."r_p2"'])).toBe('LOCK TABLE "public"."r_p1", "public"."r_p2" IN SHARE UPDATE EXCLUSIVE MODE');
  expect(lockForAnalyzeSql(['"public"."r"'], true)).toBe('LOCK TABLE ONLY "public"."r" IN SHARE UPDATE EXCLUSIVE MODE');
});
