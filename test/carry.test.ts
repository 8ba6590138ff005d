// What a table carries, as exact SQL (src/carrysql.ts): pure, no database.
import { carryCutoverSql, carryRollbackSql, identityOptions, policySql, triggerStateSql, viewSql } from '../src/carrysql';
import { namesFor } from '../src/preflightchecks';
import type { TablePlan } from '../src/types';

const tp = {
  schema: 'public',
  table: 'ledger',
  names: namesFor('ledger'),
  identities: [
    {
      column: 'id',
      kind: 'a',
      sequence: 'ledger_id_seq',
      legacySequence: 'ledger_id_seq_legacy',
      options: 'INCREMENT BY 3 MINVALUE 1 MAXVALUE 9 START WITH 1000 CACHE 1 NO CYCLE',
    },
  ],
  views: [{ name: 'public.ledger_big', createSql: 'CREATE OR REPLACE VIEW "public"."ledger_big" AS SELECT 1' }],
  triggers: [
    { name: 'ledger_touch', createSql: 'CREATE TRIGGER ledger_touch BEFORE INSERT ON public.ledger FOR EACH ROW EXECUTE FUNCTION public.t()', enabled: 'R' },
  ],
  rowSecurity: { enabled: true, forced: true },
} as unknown as TablePlan;

test('cutover: identity continued under the old sequence name, views re-pointed, triggers moved, RLS on', () => {
  expect(carryCutoverSql(tp)).toEqual([
    'ALTER SEQUENCE "public"."ledger_id_seq" RENAME TO "ledger_id_seq_legacy"',
    'ALTER TABLE "public"."ledger" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME "public"."ledger_id_seq" INCREMENT BY 3 MINVALUE 1 MAXVALUE 9 START WITH 1000 CACHE 1 NO CYCLE)',
    `SELECT setval('"public"."ledger_id_seq"'::regclass, last_value, is_called) FROM "public"."ledger_id_seq_legacy"`,
    'CREATE OR REPLACE VIEW "public"."ledger_big" AS SELECT 1',
    'ALTER TABLE "public"."ledger_legacy" DISABLE TRIGGER "ledger_touch"',
    'CREATE TRIGGER ledger_touch BEFORE INSERT ON public.ledger FOR EACH ROW EXECUTE FUNCTION public.t()',
    'ALTER TABLE "public"."ledger" ENABLE REPLICA TRIGGER "ledger_touch"',
    'ALTER TABLE "public"."ledger" ENABLE ROW LEVEL SECURITY',
    'ALTER TABLE "public"."ledger" FORCE ROW LEVEL SECURITY',
  ]);
});

test('rollback: the plain table takes the sequence value and name back, views and trigger states restored', () => {
  expect(carryRollbackSql(tp)).toEqual({
    beforeDrop: [
      `SELECT setval('"public"."ledger_id_seq_legacy"'::regclass, last_value, is_called) FROM "public"."ledger_id_seq"`,
      'CREATE OR REPLACE VIEW "public"."ledger_big" AS SELECT 1',
      'ALTER TABLE "public"."ledger" ENABLE REPLICA TRIGGER "ledger_touch"',
    ],
    afterDrop: ['ALTER SEQUENCE "public"."ledger_id_seq_legacy" RENAME TO "ledger_id_seq"'],
  });
  // A plan recorded before these fields existed renders nothing.
  const old = { ...tp, identities: undefined, views: undefined, triggers: undefined, rowSecurity: undefined } as TablePlan;
  expect(carryCutoverSql(old)).toEqual([]);
  expect(carryRollbackSql(old)).toEqual({ beforeDrop: [], afterDrop: [] });
});

test('policies, views, options and trigger states', () => {
  expect(
    policySql('public', 'ledger_partitioned', {
      name: 'by acct',
      permissive: false,
      cmd: 'w',
      roles: ['app', 'Ops"x'],
      using: '(a = 1)',
      withCheck: '(a > 0)',
    }),
  ).toBe('CREATE POLICY "by acct" ON "public"."ledger_partitioned" AS RESTRICTIVE FOR UPDATE TO "app", "Ops""x" USING ((a = 1)) WITH CHECK ((a > 0))');
  expect(policySql('public', 'p', { name: 'all', permissive: true, cmd: '*', roles: [], using: null, withCheck: null })).toBe(
    'CREATE POLICY "all" ON "public"."p" AS PERMISSIVE FOR ALL TO PUBLIC',
  );
  expect(viewSql({ schema: 's', name: 'v', definition: ' SELECT t.id\n   FROM s.t;', options: ['security_barrier=true', 'check_option=local'] })).toBe(
    `CREATE OR REPLACE VIEW "s"."v" WITH (security_barrier = 'true', check_option = 'local') AS SELECT t.id\n   FROM s.t`,
  );
  expect(() => viewSql({ schema: 's', name: 'v', definition: 'SELECT 1', options: ['x) AS SELECT 2; --=1'] })).toThrow(/unexpected view option/);
  expect(identityOptions({ increment: '1', min: '1', max: '9223372036854775807', start: '1', cache: '1', cycle: false })).toBe(
    'INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1 NO CYCLE',
  );
  expect(() => identityOptions({ increment: '1; drop', min: '1', max: '1', start: '1', cache: '1', cycle: true })).toThrow(/not an integer/);
  expect(['O', 'D', 'A'].map((e) => triggerStateSql('s', 't', 'x', e))).toEqual([
    'ALTER TABLE "s"."t" ENABLE TRIGGER "x"',
    'ALTER TABLE "s"."t" DISABLE TRIGGER "x"',
    'ALTER TABLE "s"."t" ENABLE ALWAYS TRIGGER "x"',
  ]);
});

test('publications: moved from the old table to the new at cutover (column list, row filter), back at rollback, each a guarded DO block', () => {
  const pubs = {
    ...tp,
    publications: [
      { name: 'p"1', columns: ['id', 'amount'], rowFilter: '(amount > 0)' },
      { name: 'all_cols', columns: null, rowFilter: null },
    ],
  } as TablePlan;
  const cut = carryCutoverSql(pubs).filter((s) => s.startsWith('DO'));
  expect(cut).toEqual([
    `DO $ps_pub$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid WHERE p.pubname = 'p"1' AND r.prrelid = pg_catalog.to_regclass('"public"."ledger_legacy"')) ` +
      `THEN ALTER PUBLICATION "p""1" DROP TABLE "public"."ledger_legacy"; END IF; IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'p"1') AND NOT ` +
      `EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid WHERE p.pubname = 'p"1' AND r.prrelid = pg_catalog.to_regclass('"public"."ledger"')) ` +
      `THEN ALTER PUBLICATION "p""1" ADD TABLE "public"."ledger" ("id", "amount") WHERE ((amount > 0)); END IF; END $ps_pub$`,
    expect.stringContaining(`THEN ALTER PUBLICATION "all_cols" ADD TABLE "public"."ledger"; END IF; END $ps_pub$`),
  ]);
  // Attach: the history partition leaves the publication; rollback: the partitioned table leaves, the plain one comes back.
  const attach = { ...pubs, attach: { history: 'ledger_history' } } as TablePlan;
  expect(carryCutoverSql(attach).filter((s) => s.startsWith('DO'))[1]).toContain(
    `THEN ALTER PUBLICATION "all_cols" DROP TABLE "public"."ledger_history"; END IF;`,
  );
  const back = carryRollbackSql(pubs).beforeDrop.filter((s) => s.startsWith('DO'));
  expect(back[1]).toContain(`THEN ALTER PUBLICATION "all_cols" DROP TABLE "public"."ledger_partitioned"; END IF;`);
  expect(back[1]).toContain(`THEN ALTER PUBLICATION "all_cols" ADD TABLE "public"."ledger"; END IF;`);
});
