// The rehearsal's application checks' SQL pinned as exact strings (src/smokesql.ts): identifiers quoted.
import { deleteByKeySql, explainSql, genericPlanSql, legacyInPlaceSql, rangeScanSql, selectByKeySql, updateByKeySql } from '../src/smokesql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('amount', 'numeric'));
const where = `"id" = '7'::bigint`;

test('the built-in statements on the sample row', () => {
  expect(selectByKeySql(tp, where)).toBe(`SELECT * FROM "public"."revenues" WHERE "id" = '7'::bigint`);
  expect(rangeScanSql(tp, { from: `'2024-01-01'::timestamp with time zone`, to: `'2024-02-01'::timestamp with time zone` })).toBe(
    `SELECT * FROM "public"."revenues" WHERE "occurred_at" >= '2024-01-01'::timestamp with time zone ` +
      `AND "occurred_at" < '2024-02-01'::timestamp with time zone ORDER BY "id"`,
  );
  expect(updateByKeySql(tp, '"amount" = "amount" + 1', where)).toBe(`UPDATE "public"."revenues" SET "amount" = "amount" + 1 WHERE "id" = '7'::bigint`);
  expect(deleteByKeySql(tp, where)).toBe(`DELETE FROM "public"."revenues" WHERE "id" = '7'::bigint`);
  expect(rangeScanSql({ ...tp, primaryKey: ['id', 'occurred_at'] }, { from: 'a', to: 'b' })).toMatch(/ ORDER BY "id", "occurred_at"$/);
});

test("around a statement: the legacy table in the table's place, the plan", () => {
  expect(legacyInPlaceSql(tp)).toEqual([
    'ALTER TABLE "public"."revenues" RENAME TO "revenues_ps_aside"',
    'ALTER TABLE "public"."revenues_legacy" RENAME TO "revenues"',
  ]);
  const long = revenuesPlan(col('amount', 'numeric'), { table: 'x'.repeat(50) });
  expect(legacyInPlaceSql(long)[0]).toBe(`ALTER TABLE "public"."${'x'.repeat(50)}" RENAME TO "${'x'.repeat(40)}_ps_aside"`);
  expect(explainSql('SELECT 1')).toBe('EXPLAIN (FORMAT JSON) SELECT 1');
});

test("an application statement's generic plan: prepared with its $n, explained with NULLs, dropped", () => {
  expect(genericPlanSql('ps_generic_1', 'update revenues set note = $2 where id = $1')).toEqual({
    prepare: 'PREPARE "ps_generic_1" AS update revenues set note = $2 where id = $1',
    explain: 'EXPLAIN (FORMAT JSON) EXECUTE "ps_generic_1"(NULL, NULL)',
    deallocate: 'DEALLOCATE "ps_generic_1"',
  });
  expect(genericPlanSql('p', 'select count(*) from revenues').explain).toBe('EXPLAIN (FORMAT JSON) EXECUTE "p"');
  expect(genericPlanSql('p', 'select $1, $10, $3').explain).toBe(`EXPLAIN (FORMAT JSON) EXECUTE "p"(${Array(10).fill('NULL').join(', ')})`);
});
