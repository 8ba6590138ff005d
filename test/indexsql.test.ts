// The deferred index and foreign key build's SQL pinned as exact strings (src/indexsql.ts): identifiers quoted.
import {
  addForeignKeySql,
  attachPartitionIndexSql,
  dropIndexConcurrentlySql,
  isEmptySql,
  lockAccessExclusiveSql,
  lockShareRowExclusiveSql,
  validateConstraintSql,
} from '../src/indexsql';

const fk = { name: 'revenues_org_fk', definition: 'FOREIGN KEY (org_id) REFERENCES organizations(id)' };

test('per partition: an invalid index dropped concurrently, emptiness, the foreign key NOT VALID then validated', () => {
  expect(dropIndexConcurrentlySql('public', 'revenues_p202401_i1')).toBe('DROP INDEX CONCURRENTLY IF EXISTS "public"."revenues_p202401_i1"');
  expect(isEmptySql('public', 'revenues_p202401')).toBe('SELECT NOT EXISTS (SELECT 1 FROM "public"."revenues_p202401") AS empty');
  expect(addForeignKeySql('"public"."revenues_p202401"', fk, { notValid: true })).toBe(
    'ALTER TABLE "public"."revenues_p202401" ADD CONSTRAINT "revenues_org_fk" FOREIGN KEY (org_id) REFERENCES organizations(id) NOT VALID',
  );
  expect(validateConstraintSql('public', 'revenues_p202401', 'revenues_org_fk')).toBe(
    'ALTER TABLE "public"."revenues_p202401" VALIDATE CONSTRAINT "revenues_org_fk"',
  );
});

test("the attach: locks, the partitions' indexes under the parent's, the parent's foreign key", () => {
  expect(lockShareRowExclusiveSql('"public"."revenues_partitioned"')).toBe('LOCK TABLE "public"."revenues_partitioned" IN SHARE ROW EXCLUSIVE MODE');
  expect(lockAccessExclusiveSql('"Odd ""Schema"""."t"')).toBe('LOCK TABLE "Odd ""Schema"""."t" IN ACCESS EXCLUSIVE MODE');
  expect(attachPartitionIndexSql('public', 'rev_status_idx_ps', 'revenues_p202401_i1')).toBe(
    'ALTER INDEX "public"."rev_status_idx_ps" ATTACH PARTITION "public"."revenues_p202401_i1"',
  );
  expect(addForeignKeySql('"public"."revenues_partitioned"', fk, { notValid: false })).toBe(
    'ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "revenues_org_fk" FOREIGN KEY (org_id) REFERENCES organizations(id)',
  );
});

test('odd names are quoted', () => {
  expect(dropIndexConcurrentlySql('My Schema', 'a"b')).toBe('DROP INDEX CONCURRENTLY IF EXISTS "My Schema"."a""b"');
  expect(validateConstraintSql('s', 't', 'c"k')).toBe('ALTER TABLE "s"."t" VALIDATE CONSTRAINT "c""k"');
});
