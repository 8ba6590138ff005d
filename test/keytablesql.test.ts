// The key table's statements (src/keytablesql.ts) as exact SQL: pure, no database.
import {
  dropKeyFunctionSql,
  dropKeyTriggersSql,
  keyFillSql,
  keyFunctionSql,
  keyTriggersSql,
  repointToKeysSql,
  keyTableNames,
  keyTableSql,
  lockReferencingSql,
  repointSql,
  retarget,
  validateSql,
  withKeyTableSql,
  withoutNotValid,
} from '../src/keytablesql';
import type { IncomingForeignKey, KeyTablePlan } from '../src/types';
import { col, revenuesPlan } from './fixtures';

const fk: IncomingForeignKey = {
  name: 'payment_rental_id_fkey',
  schema: 'public',
  table: 'payment',
  definition: 'FOREIGN KEY (rental_id) REFERENCES public.revenues(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED',
  target: 'public.revenues',
  validated: true,
};
const kt: KeyTablePlan = { ...keyTableNames('revenues'), columns: [{ name: 'id', type: 'bigint' }], foreignKeys: [fk] };
const tp = revenuesPlan(col('amount', 'numeric'), { owner: 'app owner', keyTable: kt });

test('names: <table>_keys and <table>_ps_keys, hashed when too long', () => {
  expect(keyTableNames('revenues')).toEqual({ table: 'revenues_keys', fn: 'revenues_ps_keys' });
  const long = keyTableNames('x'.repeat(60));
  expect(Buffer.byteLength(long.table)).toBeLessThanOrEqual(63);
  expect(long.table).toMatch(/^x{40}_[0-9a-f]{6}_keys$/);
});

test('the key table, owned like the table, and its function; its triggers on a table, enabled always', () => {
  expect(keyTableSql(tp, kt)).toEqual([
    'CREATE TABLE "public"."revenues_keys" ("id" bigint NOT NULL, PRIMARY KEY ("id"))',
    'ALTER TABLE "public"."revenues_keys" OWNER TO "app owner"',
    keyFunctionSql(tp, kt),
    'REVOKE ALL ON FUNCTION "public"."revenues_ps_keys"() FROM PUBLIC',
  ]);
  expect(keyTriggersSql(tp, kt, 'revenues')).toEqual([
    'CREATE OR REPLACE TRIGGER "ps_keys_insert" AFTER INSERT ON "public"."revenues" REFERENCING NEW TABLE AS ps_new FOR EACH STATEMENT EXECUTE FUNCTION "public"."revenues_ps_keys"()',
    'CREATE OR REPLACE TRIGGER "ps_keys_delete" AFTER DELETE ON "public"."revenues" REFERENCING OLD TABLE AS ps_old FOR EACH STATEMENT EXECUTE FUNCTION "public"."revenues_ps_keys"()',
    'CREATE OR REPLACE TRIGGER "ps_keys_update" BEFORE UPDATE OF "id" ON "public"."revenues" FOR EACH ROW WHEN ((OLD."id") IS DISTINCT FROM (NEW."id")) EXECUTE FUNCTION "public"."revenues_ps_keys"()',
    'ALTER TABLE "public"."revenues" ENABLE ALWAYS TRIGGER "ps_keys_insert"',
    'ALTER TABLE "public"."revenues" ENABLE ALWAYS TRIGGER "ps_keys_delete"',
    'ALTER TABLE "public"."revenues" ENABLE ALWAYS TRIGGER "ps_keys_update"',
  ]);
  expect(dropKeyTriggersSql(tp, 'revenues_legacy')).toEqual([
    'DROP TRIGGER IF EXISTS "ps_keys_insert" ON "public"."revenues_legacy"',
    'DROP TRIGGER IF EXISTS "ps_keys_delete" ON "public"."revenues_legacy"',
    'DROP TRIGGER IF EXISTS "ps_keys_update" ON "public"."revenues_legacy"',
  ]);
  expect(dropKeyFunctionSql(tp, kt)).toBe('DROP FUNCTION IF EXISTS "public"."revenues_ps_keys"() CASCADE');
});

test('the fill: a batch of keys after the cursor, read FOR KEY SHARE, kept where there; the last key returned', () => {
  expect(keyFillSql(tp, kt, false)).toBe(
    [
      'WITH keys AS (',
      '  SELECT "id" FROM "public"."revenues" ORDER BY "id" LIMIT $1',
      '), batch AS (',
      '  SELECT "id" FROM "public"."revenues" WHERE ("id") IN (SELECT "id" FROM keys) FOR KEY SHARE',
      '), ins AS (',
      '  INSERT INTO "public"."revenues_keys" ("id") SELECT "id" FROM batch ON CONFLICT DO NOTHING',
      ')',
      'SELECT (SELECT count(*) FROM keys)::int AS n,',
      '  (SELECT json_build_array("id"::text) FROM keys ORDER BY "id" DESC LIMIT 1) AS last',
    ].join('\n'),
  );
  const two = {
    ...kt,
    columns: [
      { name: 'tenant', type: 'integer' },
      { name: 'id', type: 'bigint' },
    ],
  };
  expect(keyFillSql(tp, two, true).split('\n')[1]).toBe(
    '  SELECT "tenant", "id" FROM "public"."revenues" WHERE ("tenant", "id") > ($1::integer, $2::bigint) ORDER BY "tenant", "id" LIMIT $3',
  );
});

test('the trigger function: statement inserts and deletes by transition table, a key update by row (composite key)', () => {
  const two = {
    ...kt,
    columns: [
      { name: 'tenant', type: 'integer' },
      { name: 'id', type: 'bigint' },
    ],
  };
  expect(keyFunctionSql(tp, two)).toBe(
    [
      'CREATE OR REPLACE FUNCTION "public"."revenues_ps_keys"() RETURNS trigger LANGUAGE plpgsql',
      '  SECURITY DEFINER SET search_path = pg_catalog, "public", pg_temp AS $ps$',
      'BEGIN',
      "  IF current_setting('partition_switchover.keys', true) = 'moving' THEN",
      '    RETURN NEW;',
      '  END IF;',
      "  IF TG_OP = 'UPDATE' THEN",
      '    UPDATE "public"."revenues_keys" k SET "tenant" = NEW."tenant", "id" = NEW."id" WHERE k."tenant" = OLD."tenant" AND k."id" = OLD."id";',
      '    RETURN NEW;',
      "  ELSIF TG_OP = 'INSERT' THEN",
      '    INSERT INTO "public"."revenues_keys" ("tenant", "id") SELECT "tenant", "id" FROM ps_new;',
      '  ELSE',
      '    DELETE FROM "public"."revenues_keys" k USING ps_old o WHERE k."tenant" = o."tenant" AND k."id" = o."id";',
      '  END IF;',
      '  RETURN NULL;',
      'END',
      '$ps$',
    ].join('\n'),
  );
  expect(keyTableSql(tp, two)[0]).toBe('CREATE TABLE "public"."revenues_keys" ("tenant" integer NOT NULL, "id" bigint NOT NULL, PRIMARY KEY ("tenant", "id"))');
});

test('re-pointing: the target replaced exactly once, dropped and added under its name NOT VALID, then validated', () => {
  const to = retarget(fk.definition, fk.target, '"public"."revenues_keys"');
  expect(to).toBe('FOREIGN KEY (rental_id) REFERENCES "public"."revenues_keys"(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED');
  expect(repointSql(fk, to)).toEqual([
    'ALTER TABLE "public"."payment" DROP CONSTRAINT "payment_rental_id_fkey"',
    'ALTER TABLE "public"."payment" ADD CONSTRAINT "payment_rental_id_fkey" FOREIGN KEY (rental_id) REFERENCES "public"."revenues_keys"(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID',
  ]);
  expect(validateSql(fk)).toEqual([
    'LOCK TABLE "public"."payment" IN SHARE UPDATE EXCLUSIVE MODE',
    'ALTER TABLE "public"."payment" VALIDATE CONSTRAINT "payment_rental_id_fkey"',
  ]);
  expect(() => retarget('FOREIGN KEY (a) REFERENCES public.other(id)', 'public.revenues', 'x')).toThrow(/cannot find the target public\.revenues/);
  expect(withoutNotValid('FOREIGN KEY (a) REFERENCES public.revenues(id) NOT VALID')).toBe('FOREIGN KEY (a) REFERENCES public.revenues(id)');
  // Each referencing table once, all in one statement.
  expect(lockReferencingSql([fk, { ...fk, name: 'other' }, { ...fk, schema: 'b"s', table: 'refund' }])).toEqual([
    'LOCK TABLE "public"."payment", "b""s"."refund" IN ACCESS EXCLUSIVE MODE',
  ]);
  expect(lockReferencingSql([])).toEqual([]);
});

test('the dry run lists the key table at prepare and the re-pointing at cutover; nothing without incoming foreign keys', () => {
  const stages = { prepare: ['P'], cutover: ['C'], copy: ['X'] };
  const r = withKeyTableSql(tp, stages);
  expect(r.copy).toEqual(['X']);
  expect(r.prepare).toEqual(['P', ...keyTableSql(tp, kt), ...keyTriggersSql(tp, kt, 'revenues'), keyFillSql(tp, kt, true)]);
  expect(r.cutover).toEqual(['LOCK TABLE "public"."payment" IN ACCESS EXCLUSIVE MODE', 'C', ...repointToKeysSql(tp, kt, [fk]), ...validateSql(fk)]);
  // At cutover the triggers move from the legacy table to the partitioned one (now under the table's name), then the foreign keys.
  expect(repointToKeysSql(tp, kt, [fk])).toEqual([
    ...dropKeyTriggersSql(tp, 'revenues_legacy'),
    ...keyTriggersSql(tp, kt, 'revenues'),
    ...repointSql(fk, retarget(fk.definition, fk.target, '"public"."revenues_keys"')),
  ]);
  expect(withKeyTableSql({ ...tp, keyTable: undefined }, stages)).toBe(stages);
});
