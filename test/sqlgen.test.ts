// Generated SQL pinned as exact strings: identifiers always quoted, values always $n.
import * as sql from '../src/sqlgen';
import { col, revenuesPlan } from './fixtures';
import { prepareSql } from '../src/plansql';

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

test("a partition carries the table's storage parameters; the copy's has autovacuum off until resumed to the table's own setting", () => {
  const tuned = { ...tp, storage: { table: ['fillfactor=80', 'autovacuum_enabled=true'], toast: ['autovacuum_vacuum_cost_delay=5'] } };
  expect(sql.storageSql(tp)).toBe('');
  expect(sql.storageSql(tp, { copied: true })).toBe(' WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)');
  expect(sql.storageSql(tuned)).toBe(` WITH ("fillfactor" = '80', "autovacuum_enabled" = 'true', toast."autovacuum_vacuum_cost_delay" = '5')`);
  expect(sql.storageSql(tuned, { copied: true })).toBe(
    ` WITH ("fillfactor" = '80', toast."autovacuum_vacuum_cost_delay" = '5', autovacuum_enabled = false, toast.autovacuum_enabled = false)`,
  );
  expect(sql.partitionSql(tuned, tp.table, tp.partitions[0])).toMatch(/TO \('2024-02-01 00:00:00\+00'\) WITH \("fillfactor" = '80'/);
  expect(sql.resumeAutovacuumSql(tp, 'public', 'revenues_p202401')).toBe(
    'ALTER TABLE "public"."revenues_p202401" RESET (autovacuum_enabled, toast.autovacuum_enabled)',
  );
  expect(sql.resumeAutovacuumSql(tuned, 'public', 'revenues_p202401')).toBe(
    `ALTER TABLE "public"."revenues_p202401" RESET (autovacuum_enabled, toast.autovacuum_enabled), SET (autovacuum_enabled = 'true')`,
  );
  expect(sql.autovacuumOff(tuned)).toEqual({ table: false, toast: false });
  expect(sql.autovacuumOff({ ...tp, storage: { table: [], toast: ['autovacuum_enabled=false'] } })).toEqual({ table: false, toast: true });
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
  expect(sql.dualWriteSql(tp).slice(1, 3)).toEqual([
    'REVOKE ALL ON FUNCTION "public"."revenues_ps_sync"() FROM PUBLIC',
    'CREATE OR REPLACE TRIGGER "ps_dual_write" AFTER INSERT OR UPDATE OR DELETE ON "public"."revenues" FOR EACH ROW EXECUTE FUNCTION "public"."revenues_ps_sync"()',
  ]);
  // Fires for session_replication_role = replica writers too (and logical replication's apply worker).
  expect(sql.dualWriteSql(tp)[3]).toBe('ALTER TABLE "public"."revenues" ENABLE ALWAYS TRIGGER "ps_dual_write"');
  // With the change log, a statement on the partitioned copy itself is recorded (not our copy's, not the trigger's own).
  expect(sql.dualWriteSql({ ...tp, changeLog: true }).slice(-2)).toEqual([
    'CREATE OR REPLACE TRIGGER "ps_direct_write" BEFORE INSERT OR UPDATE OR DELETE ON "public"."revenues_partitioned" FOR EACH STATEMENT ' +
      'WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION partition_switchover.note_direct_write()',
    'ALTER TABLE "public"."revenues_partitioned" ENABLE ALWAYS TRIGGER "ps_direct_write"',
  ]);
  // TRUNCATE refused on both tables while the switchover holds them.
  expect(sql.dualWriteSql(tp).slice(4)).toEqual([
    [
      'CREATE OR REPLACE FUNCTION "public"."revenues_ps_guard"() RETURNS trigger LANGUAGE plpgsql AS $ps$',
      'BEGIN',
      "  RAISE EXCEPTION USING ERRCODE = 'object_in_use',",
      "    MESSAGE = format('TRUNCATE of %I.%I is refused while partition-switchover keeps %s and %s equal: a TRUNCATE bypasses the row triggers that do it',",
      "      TG_TABLE_SCHEMA, TG_TABLE_NAME, 'revenues', 'revenues_partitioned'),",
      "    HINT = 'Delete the rows instead (DELETE FROM ...), or roll the switchover back or clean it up first.';",
      'END',
      '$ps$',
    ].join('\n'),
    'REVOKE ALL ON FUNCTION "public"."revenues_ps_guard"() FROM PUBLIC',
    'CREATE OR REPLACE TRIGGER "ps_no_truncate" BEFORE TRUNCATE ON "public"."revenues" FOR EACH STATEMENT EXECUTE FUNCTION "public"."revenues_ps_guard"()',
    'CREATE OR REPLACE TRIGGER "ps_no_truncate" BEFORE TRUNCATE ON "public"."revenues_partitioned" FOR EACH STATEMENT EXECUTE FUNCTION "public"."revenues_ps_guard"()',
  ]);
  // A plan recorded before the guard existed has no guard to make or drop.
  const old = { ...tp, names: { ...tp.names, guardFunction: undefined } };
  expect(sql.truncateGuardSql(old)).toEqual([]);
  expect(sql.undoTriggersSql(old).join('\n')).not.toContain('guard');
  expect(sql.undoTriggersSql(tp).at(-1)).toBe('DROP FUNCTION IF EXISTS "public"."revenues_ps_guard"() CASCADE');
});

test('mirror to legacy: a new legacy key is inserted, never upserted over another row', () => {
  expect(sql.mirrorSql(tp)[0].split('\n').slice(10, 21)).toEqual([
    `  IF TG_OP = 'INSERT' OR (OLD."id") IS DISTINCT FROM (NEW."id") THEN`,
    '    IF EXISTS (SELECT 1 FROM "public"."revenues_legacy" WHERE "id" = NEW."id") THEN',
    "      RAISE EXCEPTION USING ERRCODE = 'unique_violation',",
    "        MESSAGE = format('duplicate key (%s)=(%s): %s keeps the rows for a rollback until cleanup and still enforces that key, where another row has it',",
    `          'id', concat_ws(', ', NEW."id"), '"public"."revenues_legacy"'),`,
    "        HINT = 'Write this row with a key of its own, or run the switchover''s cleanup once a rollback is no longer needed (the wider key then applies).';",
    '    END IF;',
    '    INSERT INTO "public"."revenues_legacy" ("id", "occurred_at", "amount_cents") VALUES (NEW."id", NEW."occurred_at", NEW."amount_cents");',
    '    RETURN NEW;',
    '  END IF;',
    '  INSERT INTO "public"."revenues_legacy" ("id", "occurred_at", "amount_cents") VALUES (NEW."id", NEW."occurred_at", NEW."amount_cents")',
  ]);
  expect(sql.mirrorSql(tp)[1]).toBe('REVOKE ALL ON FUNCTION "public"."revenues_ps_mirror"() FROM PUBLIC');
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
  expect(stmts.slice(0, 9)).toEqual([
    'DROP TRIGGER IF EXISTS "ps_dual_write" ON "public"."revenues"',
    'DROP FUNCTION IF EXISTS "public"."revenues_ps_sync"()',
    'DROP TRIGGER IF EXISTS "ps_direct_write" ON "public"."revenues_partitioned"',
    'ALTER TABLE "public"."revenues" RENAME TO "revenues_legacy"',
    'ALTER TABLE "public"."revenues_partitioned" RENAME TO "revenues"',
    'ALTER INDEX "public"."revenues_pkey" RENAME TO "revenues_pkey_legacy"',
    'ALTER INDEX "public"."revenues_pkey_ps" RENAME TO "revenues_pkey"',
    'ALTER SEQUENCE "public"."revenues_id_seq" OWNED BY "public"."revenues"."id"',
    sql.mirrorSql(tp)[0],
  ]);
  expect(stmts.slice(-1)).toEqual(['ALTER TABLE "public"."revenues" ENABLE ALWAYS TRIGGER "ps_mirror_to_legacy"']);
  expect(stmts[8]).toContain('INSERT INTO "public"."revenues_legacy"');
  expect(stmts[8]).toContain('ON CONFLICT ("id") DO UPDATE SET "occurred_at" = EXCLUDED."occurred_at", "amount_cents" = EXCLUDED."amount_cents"');
  expect(sql.lockSql(tp, ['revenues', 'revenues_partitioned'])).toEqual([
    'LOCK TABLE "public"."revenues", "public"."revenues_partitioned" IN ACCESS EXCLUSIVE MODE',
  ]);
  expect(sql.viewName('CREATE OR REPLACE VIEW "public"."a ""b"".c" AS SELECT 1')).toBe('"public"."a ""b"".c"');
  expect(sql.viewLockSql('public', 'v"1', 'app owner')).toBe('ALTER VIEW "public"."v""1" OWNER TO "app owner"');
});

test('owner, table and column grants carried to the partitioned table and each partition', () => {
  const owned = revenuesPlan(col('note', 'text'), {
    owner: 'app',
    acl: ['app=arwdDxt/app', 'reader=r/app', '=r/app'],
    columnAcl: [{ column: 'note', acl: ['"odd ""one"=w/app'] }],
  });
  expect(prepareSql(owned).filter((s) => /OWNER TO|GRANT/.test(s))).toEqual([
    'ALTER TABLE "public"."revenues_partitioned" OWNER TO "app"',
    'GRANT INSERT, SELECT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON "public"."revenues_partitioned" TO "app"',
    'GRANT SELECT ON "public"."revenues_partitioned" TO "reader"',
    'GRANT SELECT ON "public"."revenues_partitioned" TO PUBLIC',
    'GRANT UPDATE ("note") ON "public"."revenues_partitioned" TO "odd ""one"',
    'ALTER TABLE "public"."revenues_p202401" OWNER TO "app"',
  ]);
  // The backup: the table's owner, and read access for whoever may read the table or its columns.
  const withColumnRead = { ...owned, columnAcl: [{ column: 'note', acl: ['"odd ""one"=rw/app'] }] };
  expect(sql.backupAccessSql(withColumnRead)).toEqual([
    'ALTER TABLE "public"."revenues_backup" OWNER TO "app"',
    'GRANT SELECT ON "public"."revenues_backup" TO "app"',
    'GRANT SELECT ON "public"."revenues_backup" TO "reader"',
    'GRANT SELECT ON "public"."revenues_backup" TO PUBLIC',
    'GRANT SELECT ("note") ON "public"."revenues_backup" TO "odd ""one"',
  ]);
});

test('rollback and cleanup statements drop no table by name (only recorded ones are dropped, by oid check)', () => {
  const all = [...sql.undoTriggersSql(tp), ...sql.undoCutoverSql(tp), ...sql.cleanupSql(tp)];
  expect(all.filter((s) => s.startsWith('DROP TABLE'))).toEqual([]);
  expect(sql.cleanupSql(tp)).toEqual([
    'DROP TRIGGER IF EXISTS "ps_mirror_to_legacy" ON "public"."revenues"',
    'DROP FUNCTION IF EXISTS "public"."revenues_ps_mirror"()',
    'DROP FUNCTION IF EXISTS "public"."revenues_ps_guard"() CASCADE',
  ]);
});

test('with the change log (plans since it exists), the dual-write trigger logs the keys each write touched, then syncs', () => {
  const fn = sql.dualWriteSql({ ...tp, changeLog: true })[0].split('\n');
  expect(fn.slice(3, 9)).toEqual([
    "  IF TG_OP <> 'INSERT' THEN",
    '    INSERT INTO partition_switchover.changed_keys (table_oid, key) VALUES (TG_RELID, json_build_array(OLD."id", OLD."occurred_at")::text);',
    '  END IF;',
    `  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (OLD."id", OLD."occurred_at") IS DISTINCT FROM (NEW."id", NEW."occurred_at")) THEN`,
    '    INSERT INTO partition_switchover.changed_keys (table_oid, key) VALUES (TG_RELID, json_build_array(NEW."id", NEW."occurred_at")::text);',
    '  END IF;',
  ]);
  expect(fn[9]).toBe("  IF TG_OP = 'DELETE' THEN");
  // The mirror after cutover logs nothing: nothing compares those writes.
  expect(sql.mirrorSql({ ...tp, changeLog: true })[0]).not.toMatch(/changed_keys/);
});

test("the rollback's drop of the partitioned table in steps: a foreign key (table, then the referenced one), a batch of partitions", () => {
  expect(sql.dropForeignKeySql(tp, { name: 'revenues_org_fk', refSchema: 'public', refTable: 'orgs' })).toEqual([
    'LOCK TABLE ONLY "public"."revenues_partitioned", ONLY "public"."orgs" IN ACCESS EXCLUSIVE MODE',
    'ALTER TABLE "public"."revenues_partitioned" DROP CONSTRAINT IF EXISTS "revenues_org_fk"',
  ]);
  expect(sql.lockPartitionedOnlySql(tp)).toBe('LOCK TABLE ONLY "public"."revenues_partitioned" IN ACCESS EXCLUSIVE MODE');
  expect(sql.dropPartitionsSql(tp, ['revenues_p202401', 'revenues_pmax'])).toBe('DROP TABLE "public"."revenues_p202401", "public"."revenues_pmax"');
});

test("a table's exact row count, identifiers quoted", () => {
  expect(sql.rowCountSql('public', 'a"b')).toBe('SELECT count(*)::bigint AS n FROM "public"."a""b"');
  expect(sql.rowCountSql('My Schema', 'revenues_partitioned')).toBe('SELECT count(*)::bigint AS n FROM "My Schema"."revenues_partitioned"');
});
