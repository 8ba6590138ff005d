// The restore from backup's SQL (src/restoresql.ts), pinned as exact strings.
import {
  backupKeyIndexSql,
  restoreLockSql,
  restoreLoggedSql,
  restoreNextBoundSql,
  restoreRangeSql,
  restoreTriggerOffSql,
  restoreTriggerSql,
} from '../src/restoresql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('amount_cents', 'bigint'));

test('log trigger and backup key index', () => {
  expect(restoreTriggerSql(tp)).toBe(
    `CREATE TRIGGER "ps_restore_log" AFTER INSERT OR UPDATE OR DELETE ON "public"."revenues" FOR EACH ROW EXECUTE FUNCTION partition_switchover.restore_log('id')`,
  );
  expect(restoreTriggerOffSql(tp)).toBe('DROP TRIGGER IF EXISTS "ps_restore_log" ON "public"."revenues"');
  expect(restoreLockSql(tp)).toBe('LOCK TABLE "public"."revenues" IN SHARE ROW EXCLUSIVE MODE');
  expect(backupKeyIndexSql(tp, 'revenues_backup_ps_key')).toBe('CREATE INDEX IF NOT EXISTS "revenues_backup_ps_key" ON "public"."revenues_backup" ("id")');
});

test('a batch by key range: rows the backup lacks deleted, its rows put back', () => {
  expect(restoreRangeSql(tp)).toEqual({
    delete:
      'DELETE FROM "public"."revenues" t WHERE NOT EXISTS (SELECT 1 FROM "public"."revenues_backup" b WHERE b."id" = t."id") ' +
      'AND ($1::bigint IS NULL OR t."id" >= $1) AND ($2::bigint IS NULL OR t."id" < $2)',
    upsert:
      'INSERT INTO "public"."revenues" AS t ("id", "occurred_at", "amount_cents") SELECT b."id", b."occurred_at", b."amount_cents" FROM "public"."revenues_backup" b ' +
      'WHERE true AND ($1::bigint IS NULL OR b."id" >= $1) AND ($2::bigint IS NULL OR b."id" < $2) ' +
      'ON CONFLICT ("id") DO UPDATE SET "occurred_at" = EXCLUDED."occurred_at", "amount_cents" = EXCLUDED."amount_cents"',
  });
  expect(restoreRangeSql({ ...tp, splitColumn: null }).delete).toBe(
    'DELETE FROM "public"."revenues" t WHERE NOT EXISTS (SELECT 1 FROM "public"."revenues_backup" b WHERE b."id" = t."id")',
  );
  expect(restoreNextBoundSql(tp)).toBe(
    'SELECT b."id"::text AS bound FROM "public"."revenues_backup" b WHERE $1::bigint IS NULL OR b."id" >= $1 ORDER BY b."id" OFFSET $2 LIMIT 1',
  );
});

test('the logged keys put back', () => {
  const k = `WITH k AS (SELECT DISTINCT (key::jsonb ->> 0)::bigint AS "id" FROM partition_switchover.restore_keys WHERE table_oid = $1::regclass AND seq <= $2) `;
  expect(restoreLoggedSql(tp)).toEqual({
    delete: `${k}DELETE FROM "public"."revenues" t USING k WHERE t."id" = k."id" AND NOT EXISTS (SELECT 1 FROM "public"."revenues_backup" b WHERE b."id" = t."id")`,
    upsert:
      `${k}INSERT INTO "public"."revenues" AS t ("id", "occurred_at", "amount_cents") SELECT b."id", b."occurred_at", b."amount_cents" FROM "public"."revenues_backup" b ` +
      'JOIN k ON b."id" = k."id" ON CONFLICT ("id") DO UPDATE SET "occurred_at" = EXCLUDED."occurred_at", "amount_cents" = EXCLUDED."amount_cents"',
    forget: 'DELETE FROM partition_switchover.restore_keys WHERE table_oid = $1::regclass AND seq <= $2',
  });
});
