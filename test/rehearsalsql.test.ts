// The rehearsal's SQL pinned as exact strings (src/rehearsalsql.ts): identifiers quoted.
import { deleteMarkedSql, deleteWhereSql, markedRowsSql, moveMarkedSql, updateMarkedSql } from '../src/rehearsalsql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('status', 'text'));

test('the marked rows of one side: key as text, row hash, partition, by key', () => {
  expect(markedRowsSql(tp, 'revenues_partitioned', '"id" <= -2000000000')).toBe(
    'SELECT "id"::text AS key, hash_record_extended(ROW("id", "occurred_at", "status"), 0)::text AS hash, tableoid::regclass::text AS part ' +
      'FROM "public"."revenues_partitioned" WHERE "id" <= -2000000000 ORDER BY 1',
  );
  const two = revenuesPlan(col('status', 'text'), { primaryKey: ['id', 'occurred_at'] });
  expect(markedRowsSql(two, 'revenues', 'true')).toMatch(/^SELECT "id"::text \|\| ',' \|\| "occurred_at"::text AS key, /);
});

test("the trigger test's writes name the table and the split column", () => {
  expect(updateMarkedSql(tp, '"status" = "status"', -2000000001)).toBe('UPDATE "public"."revenues" SET "status" = "status" WHERE "id" = -2000000001');
  expect(moveMarkedSql(tp, "'2024-01-01'::date", -2000000001)).toBe(
    `UPDATE "public"."revenues" SET "occurred_at" = '2024-01-01'::date WHERE "id" = -2000000001`,
  );
  expect(deleteMarkedSql(tp, [-2000000001, -2000000002])).toBe('DELETE FROM "public"."revenues" WHERE "id" IN (-2000000001, -2000000002)');
});

test('the sweep of marked rows', () => {
  expect(deleteWhereSql('public', 'revenues', '"id" <= -2000000000')).toBe('DELETE FROM "public"."revenues" WHERE "id" <= -2000000000');
});
