// The fast copy's SQL pinned as exact strings (src/copysql.ts): identifiers quoted, values $n.
import { chunkBounds, chunkDiffSql, chunkHashSql, deferredIndex, indexOn, partitionIndexName, rangeBatchSql, repairSql, setSnapshotSql } from '../src/copysql';
import { referencedTable } from '../activities/indexes';
import type { IndexPlan } from '../src/types';
import { col, revenuesPlan } from './fixtures';

const secondary: IndexPlan = {
  name: 'rev_status_idx',
  tempName: 'rev_status_idx_ps',
  isPrimary: false,
  createSql: 'CREATE INDEX IF NOT EXISTS "rev_status_idx_ps" ON "public"."revenues_partitioned" USING btree (status)',
};
const tp = revenuesPlan(col('status', 'text'), {
  indexes: [{ name: 'revenues_pkey', tempName: 'revenues_pkey_ps', createSql: '', isPrimary: true }, secondary],
});

test('a range batch: no lock in mode recheck, FOR SHARE in mode lock, ON CONFLICT only on the retry', () => {
  expect(rangeBatchSql(tp, { lock: false })).toBe(
    [
      'INSERT INTO "public"."revenues_partitioned" ("id", "occurred_at", "status")',
      '  SELECT b."id", b."occurred_at", b."status" FROM "public"."revenues" b WHERE b."id" >= $1::bigint AND b."id" <= $2::bigint',
      '  AND NOT EXISTS (SELECT 1 FROM "public"."revenues_partitioned" p WHERE p."id" >= $1::bigint AND p."id" <= $2::bigint AND p."id" = b."id" AND p."occurred_at" = b."occurred_at")',
    ].join('\n'),
  );
  expect(rangeBatchSql(tp, { lock: true })).toMatch(/ AND p."occurred_at" = b."occurred_at"\)\n {2}FOR SHARE OF b$/);
  expect(rangeBatchSql(tp, { lock: true, onConflict: true })).toMatch(/\n {2}FOR SHARE OF b\n {2}ON CONFLICT DO NOTHING$/);
  expect(rangeBatchSql(tp, { lock: false, onConflict: true })).toMatch(/\)\n {2}ON CONFLICT DO NOTHING$/);
  expect(() => rangeBatchSql({ ...tp, splitColumn: null }, { lock: false })).toThrow(/no integer key/);
});

test('the re-check compares keys; the repair locks the legacy rows first', () => {
  expect(chunkHashSql(tp, 'revenues', 10000)).toBe(
    'SELECT ("id" / 10000 - ("id" % 10000 < 0)::int) AS chunk, count(*)::bigint AS rows, coalesce(sum(hash_record_extended(ROW("id", "occurred_at"), 0)), 0)::text AS hash ' +
      'FROM "public"."revenues" GROUP BY 1',
  );
  expect(chunkDiffSql(tp, 10000)).toBe(
    'SELECT DISTINCT json_build_array(coalesce(l."id", p."id")::text)::text AS key FROM ' +
      '(SELECT "id", "occurred_at", 1 AS h FROM "public"."revenues" WHERE "id" >= $1::bigint AND "id" <= $2::bigint) l FULL JOIN ' +
      '(SELECT "id", "occurred_at", 1 AS h FROM "public"."revenues_partitioned" WHERE "id" >= $1::bigint AND "id" <= $2::bigint) p ' +
      'USING ("id", "occurred_at") WHERE l.h IS DISTINCT FROM p.h LIMIT $3::int',
  );
  const keys = 'SELECT (x->>0)::bigint FROM json_array_elements($1::json) x';
  expect(repairSql(tp)).toEqual([
    `SELECT 1 FROM "public"."revenues" WHERE ("id") IN (${keys}) FOR SHARE`,
    `DELETE FROM "public"."revenues_partitioned" WHERE ("id") IN (${keys})`,
    `INSERT INTO "public"."revenues_partitioned" ("id", "occurred_at", "status") SELECT "id", "occurred_at", "status" FROM "public"."revenues" WHERE ("id") IN (${keys})`,
  ]);
  // The other side of the comparison reads the snapshot the first exported.
  expect(setSnapshotSql('00000003-0000001B-1')).toBe(`SET TRANSACTION SNAPSHOT '00000003-0000001B-1'`);
  expect(setSnapshotSql("x'y")).toBe(`SET TRANSACTION SNAPSHOT 'x''y'`);
});

test('indexes after the copy: per partition concurrently, the parent ON ONLY; foreign keys read for their referenced table', () => {
  expect(deferredIndex(tp.indexes[0])).toBe(false);
  expect(deferredIndex(secondary)).toBe(true);
  expect(deferredIndex({ ...secondary, createSql: 'ALTER TABLE x ADD CONSTRAINT y UNIQUE (a)' })).toBe(false);
  expect(indexOn(secondary, { name: 'revenues_p202401_i1', on: '"public"."revenues_p202401"', concurrently: true })).toBe(
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "revenues_p202401_i1" ON "public"."revenues_p202401" USING btree (status)',
  );
  expect(indexOn(secondary, { name: 'rev_status_idx_ps', on: '"public"."revenues_partitioned"', only: true })).toBe(
    'CREATE INDEX IF NOT EXISTS "rev_status_idx_ps" ON ONLY "public"."revenues_partitioned" USING btree (status)',
  );
  // Plans since indexes are data: the same statements from the recorded shape.
  const shaped = { ...secondary, createSql: 'not read', index: { unique: true, using: 'USING btree (status)' } };
  expect(deferredIndex(shaped)).toBe(true);
  expect(indexOn(shaped, { name: 'i1', on: '"public"."p"', concurrently: true })).toBe(
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "i1" ON "public"."p" USING btree (status)',
  );
  expect(partitionIndexName('x'.repeat(63), 12)).toBe(`${'x'.repeat(59)}_i12`);
  expect(referencedTable('FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE')).toBe('organizations');
  expect(referencedTable('FOREIGN KEY (a) REFERENCES "Odd ""Schema"""."t"(id)')).toBe('"Odd ""Schema"""."t"');
});

test('re-check chunk bounds are inclusive and stay inside the key type (smallint, bigint extremes)', () => {
  const small = revenuesPlan(col('status', 'text'), {
    columns: [col('id', 'smallint'), col('occurred_at', 'timestamp with time zone'), col('status', 'text')],
  });
  expect(chunkBounds(small, '3', 10000)).toEqual(['30000', '32767']);
  expect(chunkBounds(small, '-4', 10000)).toEqual(['-32768', '-30001']);
  const big = revenuesPlan(col('status', 'text'));
  expect(chunkBounds(big, '922337203685477', 10000)).toEqual(['9223372036854770000', '9223372036854775807']);
});
