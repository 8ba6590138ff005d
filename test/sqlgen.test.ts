// Generated SQL pinned as exact strings: identifiers always quoted, values always $n.
import * as sql from '../src/sqlgen';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('amount_cents', 'bigint'), {
  sumColumns: ['amount_cents'],
  sequences: [{ sequence: 'revenues_id_seq', column: 'id' }],
});

test('identifiers are quoted by the driver, even hostile ones', () => {
  expect(sql.qname('public', 'a"b')).toBe('"public"."a""b"');
  expect(sql.literal("it's")).toBe("'it''s'");
});

test('partitioned table and partitions', () => {
  expect(sql.createPartitionedTableSql(tp)).toBe(
    'CREATE TABLE IF NOT EXISTS "public"."revenues_partitioned" (LIKE "public"."revenues" INCLUDING DEFAULTS INCLUDING CONSTRAINTS ' +
      'INCLUDING GENERATED INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE ("occurred_at")',
  );
  expect(sql.partitionSql(tp, tp.names.partitioned, tp.partitions[0])).toBe(
    'CREATE TABLE IF NOT EXISTS "public"."revenues_p202401" PARTITION OF "public"."revenues_partitioned" ' +
      "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')",
  );
  expect(sql.primaryKeySql(tp)).toBe('ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "revenues_pkey_ps" PRIMARY KEY ("id", "occurred_at")');
});

test('dual-write trigger function: delete, key-moving update, upsert', () => {
  expect(sql.dualWriteSql(tp)[0]).toBe(
    [
      'CREATE OR REPLACE FUNCTION "public"."revenues_ps_sync"() RETURNS trigger LANGUAGE plpgsql',
      '  SECURITY DEFINER SET search_path = pg_catalog, "public", pg_temp AS $ps$',
      'BEGIN',
      "  IF TG_OP = 'DELETE' THEN",
      '    DELETE FROM "public"."revenues_partitioned" WHERE "id" = OLD."id" AND "occurred_at" = OLD."occurred_at";',
      '    RETURN OLD;',
      '  END IF;',
      `  IF TG_OP = 'UPDATE' AND (OLD."id", OLD."occurred_at") IS DISTINCT FROM (NEW."id", NEW."occurred_at") THEN`,
      '    DELETE FROM "public"."revenues_partitioned" WHERE "id" = OLD."id" AND "occurred_at" = OLD."occurred_at";',
      '  END IF;',
      '  INSERT INTO "public"."revenues_partitioned" ("id", "occurred_at", "amount_cents") VALUES (NEW."id", NEW."occurred_at", NEW."amount_cents")',
      '    ON CONFLICT ("id", "occurred_at") DO UPDATE SET "amount_cents" = EXCLUDED."amount_cents";',
      '  RETURN NEW;',
      'END',
      '$ps$',
    ].join('\n'),
  );
  expect(sql.dualWriteSql(tp)[1]).toBe(
    'CREATE OR REPLACE TRIGGER "ps_dual_write" AFTER INSERT OR UPDATE OR DELETE ON "public"."revenues" FOR EACH ROW EXECUTE FUNCTION "public"."revenues_ps_sync"()',
  );
});

test('copy batch: keyset after the cursor, bounded stream, FOR SHARE, ON CONFLICT DO NOTHING', () => {
  expect(sql.copyBatchSql(tp, { withCursor: true, lo: false, hi: true })).toBe(
    [
      'WITH batch AS (',
      '  SELECT "id", "occurred_at", "amount_cents" FROM "public"."revenues"',
      '  WHERE ("id") > ($1::bigint) AND "id" < $2::bigint',
      '  ORDER BY "id" LIMIT $3 FOR SHARE',
      '), ins AS (',
      '  INSERT INTO "public"."revenues_partitioned" ("id", "occurred_at", "amount_cents") SELECT "id", "occurred_at", "amount_cents" FROM batch ON CONFLICT DO NOTHING RETURNING 1',
      ')',
      'SELECT (SELECT count(*) FROM batch)::int AS rows, (SELECT count(*) FROM ins)::int AS inserted,',
      '  (SELECT json_build_array("id"::text) FROM batch ORDER BY "id" DESC LIMIT 1) AS last',
    ].join('\n'),
  );
});

test('cutover: drop dual-write, swap names, move sequence, mirror back to legacy', () => {
  const stmts = sql.cutoverSql(tp);
  expect(stmts.slice(0, 8)).toEqual([
    'DROP TRIGGER IF EXISTS "ps_dual_write" ON "public"."revenues"',
    'DROP FUNCTION IF EXISTS "public"."revenues_ps_sync"()',
    'ALTER TABLE "public"."revenues" RENAME TO "revenues_legacy"',
    'ALTER TABLE "public"."revenues_partitioned" RENAME TO "revenues"',
    'ALTER INDEX "public"."revenues_pkey" RENAME TO "revenues_pkey_legacy"',
    'ALTER INDEX "public"."revenues_pkey_ps" RENAME TO "revenues_pkey"',
    'ALTER SEQUENCE "public"."revenues_id_seq" OWNED BY "public"."revenues"."id"',
    sql.mirrorSql(tp)[0],
  ]);
  expect(stmts[7]).toContain('INSERT INTO "public"."revenues_legacy"');
  expect(stmts[7]).toContain('ON CONFLICT ("id") DO UPDATE SET "occurred_at" = EXCLUDED."occurred_at", "amount_cents" = EXCLUDED."amount_cents"');
  expect(sql.lockSql(tp, ['revenues', 'revenues_partitioned'])).toEqual([
    'LOCK TABLE "public"."revenues", "public"."revenues_partitioned" IN ACCESS EXCLUSIVE MODE',
  ]);
  expect(sql.viewName('CREATE OR REPLACE VIEW "public"."a ""b"".c" AS SELECT 1')).toBe('"public"."a ""b"".c"');
  expect(sql.viewLockSql('public', 'v"1', 'app owner')).toBe('ALTER VIEW "public"."v""1" OWNER TO "app owner"');
});
