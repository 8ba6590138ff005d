// Preflight's own reads pinned as exact strings (src/preflightsql.ts): identifiers quoted.
import {
  columnRangeSql,
  conflictStatementsSql,
  distinctSampleSql,
  hashProbeSql,
  keyRangeSql,
  violationCountSql,
  violationSelectSql,
} from '../src/preflightsql';

test('the partition key range: days in UTC for timestamptz, the NULL check only for a nullable key', () => {
  expect(keyRangeSql('public', 'revenues', 'occurred_at', { utc: true, notNull: false })).toBe(
    `select (min("occurred_at") at time zone 'UTC')::date::text as min, (max("occurred_at") at time zone 'UTC')::date::text as max, ` +
      `exists (select 1 from "public"."revenues" where "occurred_at" is null) as has_nulls from "public"."revenues"`,
  );
  expect(keyRangeSql('public', 'revenues', 'day', { utc: false, notNull: true })).toBe(
    'select min("day")::date::text as min, max("day")::date::text as max, false as has_nulls from "public"."revenues"',
  );
});

test('reads of the table and of pg_stat_statements', () => {
  expect(conflictStatementsSql('ext')).toBe(
    `select query from "ext"."pg_stat_statements" where dbid = (select oid from pg_database where datname = current_database()) and query ~* 'on\\s+conflict' limit 5000`,
  );
  expect(hashProbeSql('public', 'revenues', 'h(t)')).toBe(
    'SELECT h(t) AS h FROM (SELECT * FROM "public"."revenues" LIMIT 0) t RIGHT JOIN (VALUES (1)) v(ps_probe) ON true',
  );
  expect(distinctSampleSql('public', 'revenues', 'tenant')).toBe(
    'select count(distinct "tenant")::float8 as n_distinct, count(*)::float8 as n from (select "tenant" from "public"."revenues" limit 10000) s',
  );
  expect(columnRangeSql('public', 'revenues', 'id')).toBe('select min("id")::text as min, max("id")::text as max from "public"."revenues"');
});

test('NOT VALID constraints: the violating rows counted and shown', () => {
  const fk = { name: 'fk', type: 'f' as const, check_expr: null, columns: ['a'], ref_schema: 'public', ref_table: 'b', ref_columns: ['id'], match: 's' };
  expect(violationCountSql('public', 't', fk)).toBe(
    'SELECT count(*)::bigint AS n FROM (SELECT 1 FROM "public"."t" t WHERE t."a" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "public"."b" r WHERE r."id" = t."a") LIMIT 1000) v',
  );
  const check = { ...fk, type: 'c' as const, check_expr: '(n > 0)' };
  expect(violationSelectSql('public', 't', check)).toBe('SELECT * FROM "public"."t" t WHERE NOT ((n > 0))');
});
