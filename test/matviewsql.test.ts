// Materialized views carried, as exact SQL (src/matviewsql.ts): pure, no database.
import {
  dropMatviewSql,
  matviewAccessSql,
  matviewBuildSql,
  matviewCreateSql,
  matviewIndexSql,
  matviewLockSql,
  matviewNames,
  matviewPlanSql,
  matviewSwapSql,
  probeSql,
  recreateMatviewSql,
  refreshMatviewSql,
  retargetDefinition,
} from '../src/matviewsql';
import type { MatviewPlan, TablePlan } from '../src/types';

const to = 'public.ledger_partitioned';

test('the definition re-aimed at the partitioned table: the bare scan gets the name its columns are printed with, an alias stays, ONLY goes', () => {
  expect(retargetDefinition(' SELECT sum(ledger.amount) AS total\n   FROM public.ledger;', 'public.ledger', to, 'ledger')).toBe(
    'SELECT sum(ledger.amount) AS total\n   FROM public.ledger_partitioned ledger',
  );
  expect(
    retargetDefinition('SELECT a.id\n   FROM (public.ledger a\n     JOIN public.ledger b USING (id))\n  WHERE (a.amount > 0);', 'public.ledger', to, 'ledger'),
  ).toBe('SELECT a.id\n   FROM (public.ledger_partitioned a\n     JOIN public.ledger_partitioned b USING (id))\n  WHERE (a.amount > 0)');
  expect(retargetDefinition('SELECT ledger.id\n   FROM ONLY public.ledger\n  WHERE (ledger.id > 1)', 'public.ledger', to, 'ledger')).toBe(
    'SELECT ledger.id\n   FROM public.ledger_partitioned ledger\n  WHERE (ledger.id > 1)',
  );
  // Another relation whose name starts alike, a column and a literal are left alone; a quoted alias is an alias.
  expect(
    retargetDefinition(
      `SELECT ledger.id, x.ledger FROM public.ledger "L", public.ledger_x x, public.ledger JOIN s.t ON true WHERE ('public.ledger' <> '')`,
      'public.ledger',
      to,
      'ledger',
    ),
  ).toBe(
    `SELECT ledger.id, x.ledger FROM public.ledger_partitioned "L", public.ledger_x x, public.ledger_partitioned ledger JOIN s.t ON true WHERE ('public.ledger' <> '')`,
  );
  // Quoted names, as quote_ident prints them.
  expect(retargetDefinition('SELECT "My T".id FROM "S x"."My T"', '"S x"."My T"', '"S x"."My T_partitioned"', '"My T"')).toBe(
    'SELECT "My T".id FROM "S x"."My T_partitioned" "My T"',
  );
  expect(probeSql('SELECT 1 AS a')).toBe('SELECT * FROM (SELECT 1 AS a) ps_probe LIMIT 0');
});

test('names: ours and the legacy one fit in 63 bytes', () => {
  expect(matviewNames('ledger_daily')).toEqual({ newName: 'ledger_daily_ps_new', legacyName: 'ledger_daily_legacy' });
  const long = matviewNames('m'.repeat(60));
  expect(Buffer.byteLength(long.newName)).toBeLessThanOrEqual(63);
  expect(long.newName).toMatch(/^m{40}_[0-9a-f]{6}_ps_new$/);
  expect(long.legacyName).toMatch(/^m{40}_[0-9a-f]{6}_legacy$/);
});

const plan: MatviewPlan = {
  schema: 'rep',
  name: 'daily',
  newName: 'daily_ps_new',
  legacyName: 'daily_legacy',
  owner: 'app',
  createSql: 'CREATE MATERIALIZED VIEW ...',
  populated: true,
  indexes: [
    { name: 'daily_day', newName: 'daily_day_ps_new', legacyName: 'daily_day_legacy', createSql: 'CREATE UNIQUE INDEX ...', tablespace: null },
    { name: 'daily_n', newName: 'daily_n_ps_new', legacyName: 'daily_n_legacy', createSql: 'CREATE INDEX ...', tablespace: 'fast' },
  ],
  accessSql: ['GRANT SELECT ON "rep"."daily_ps_new" TO "reader"'],
  rowsRead: 10,
  refreshAtCutover: true,
};

test('build: ours as the owner with options, tablespace, data or not; its indexes, grants and comment', () => {
  expect(
    matviewCreateSql({ schema: 'rep', newName: 'daily_ps_new', options: ['fillfactor=70'], tablespace: 'fast', definition: 'SELECT 1 AS a', populated: true }),
  ).toBe(`CREATE MATERIALIZED VIEW "rep"."daily_ps_new" WITH (fillfactor = '70') TABLESPACE "fast" AS SELECT 1 AS a WITH DATA`);
  expect(matviewCreateSql({ schema: 'rep', newName: 'd', options: [], tablespace: null, definition: 'SELECT 1 AS a', populated: false })).toBe(
    'CREATE MATERIALIZED VIEW "rep"."d" AS SELECT 1 AS a WITH NO DATA',
  );
  expect(() =>
    matviewCreateSql({ schema: 'r', newName: 'd', options: ['x) AS SELECT 2; --=1'], tablespace: null, definition: 'SELECT 1', populated: true }),
  ).toThrow(/unexpected materialized view option/);
  expect(matviewIndexSql('rep', 'daily_ps_new', { newName: 'daily_day_ps_new', unique: true, usingClause: 'btree (day)' })).toBe(
    'CREATE UNIQUE INDEX "daily_day_ps_new" ON "rep"."daily_ps_new" USING btree (day)',
  );
  expect(matviewAccessSql({ schema: 'rep', newName: 'daily_ps_new', acl: ['app=arwdDxt/app', 'reader=r/app'], comment: "it's daily" })).toEqual([
    'GRANT INSERT, SELECT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "rep"."daily_ps_new" TO "app"',
    'GRANT SELECT ON "rep"."daily_ps_new" TO "reader"',
    `COMMENT ON MATERIALIZED VIEW "rep"."daily_ps_new" IS 'it''s daily'`,
  ]);
  expect(matviewBuildSql(plan)).toEqual([
    'SET LOCAL ROLE "app"',
    'CREATE MATERIALIZED VIEW ...',
    'CREATE UNIQUE INDEX ...',
    'CREATE INDEX ...',
    'ALTER INDEX "rep"."daily_n_ps_new" SET TABLESPACE "fast"',
    'GRANT SELECT ON "rep"."daily_ps_new" TO "reader"',
  ]);
  expect(refreshMatviewSql(plan)).toBe('REFRESH MATERIALIZED VIEW "rep"."daily_ps_new"');
  expect(dropMatviewSql('rep', 'daily_ps_new')).toBe('DROP MATERIALIZED VIEW "rep"."daily_ps_new"');
  expect(recreateMatviewSql('rep', 'daily', ' SELECT 1 AS a;')).toBe('CREATE MATERIALIZED VIEW "rep"."daily" AS SELECT 1 AS a');
  expect(matviewLockSql('rep', 'daily', 'app')).toBe('ALTER MATERIALIZED VIEW "rep"."daily" OWNER TO "app"');
});

test("the dry-run's statements: build (and the cheap refresh), swap with the views re-pointed, the original's drop; none without materialized views", () => {
  const tp = {
    matviews: [{ ...plan, indexes: [], accessSql: [], views: [{ name: 'rep.v', createSql: 'CREATE OR REPLACE VIEW "rep"."v" AS SELECT 1' }] }],
  } as unknown as TablePlan;
  expect(matviewPlanSql(tp)).toEqual({
    matviews: [
      'SET LOCAL ROLE "app"',
      'CREATE MATERIALIZED VIEW ...',
      'REFRESH MATERIALIZED VIEW "rep"."daily_ps_new"',
      'ALTER MATERIALIZED VIEW "rep"."daily" RENAME TO "daily_legacy"',
      'ALTER MATERIALIZED VIEW "rep"."daily_ps_new" RENAME TO "daily"',
      'CREATE OR REPLACE VIEW "rep"."v" AS SELECT 1',
      'DROP MATERIALIZED VIEW "rep"."daily_legacy"',
    ],
  });
  expect(matviewPlanSql({ matviews: undefined } as unknown as TablePlan)).toEqual({});
});

test('the swap at cutover and back at rollback, with every index name', () => {
  expect(matviewSwapSql(plan, 'cutover')).toEqual([
    'ALTER MATERIALIZED VIEW "rep"."daily" RENAME TO "daily_legacy"',
    'ALTER INDEX "rep"."daily_day" RENAME TO "daily_day_legacy"',
    'ALTER INDEX "rep"."daily_n" RENAME TO "daily_n_legacy"',
    'ALTER MATERIALIZED VIEW "rep"."daily_ps_new" RENAME TO "daily"',
    'ALTER INDEX "rep"."daily_day_ps_new" RENAME TO "daily_day"',
    'ALTER INDEX "rep"."daily_n_ps_new" RENAME TO "daily_n"',
  ]);
  expect(matviewSwapSql(plan, 'rollback')).toEqual([
    'ALTER MATERIALIZED VIEW "rep"."daily" RENAME TO "daily_ps_new"',
    'ALTER INDEX "rep"."daily_day" RENAME TO "daily_day_ps_new"',
    'ALTER INDEX "rep"."daily_n" RENAME TO "daily_n_ps_new"',
    'ALTER MATERIALIZED VIEW "rep"."daily_legacy" RENAME TO "daily"',
    'ALTER INDEX "rep"."daily_day_legacy" RENAME TO "daily_day"',
    'ALTER INDEX "rep"."daily_n_legacy" RENAME TO "daily_n"',
  ]);
});
