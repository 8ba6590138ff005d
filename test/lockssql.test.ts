// The lock budget's settings pinned as exact strings (src/lockssql.ts).
import { budgetSql } from '../src/lockssql';

test('lock_timeout always, statement_timeout only for a statement under the budget, the statement after them', () => {
  expect(budgetSql(400, true)).toBe(`SET LOCAL lock_timeout = '400ms'; SET LOCAL statement_timeout = '400ms'`);
  expect(budgetSql(1, false)).toBe(`SET LOCAL lock_timeout = '1ms'; SET LOCAL statement_timeout = '0'`);
  expect(budgetSql(250, true, 'LOCK TABLE "public"."t"')).toBe(
    `SET LOCAL lock_timeout = '250ms'; SET LOCAL statement_timeout = '250ms'; LOCK TABLE "public"."t"`,
  );
});
