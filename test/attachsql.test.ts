// The attach strategy's small statements pinned as exact strings (src/attachsql.ts): identifiers quoted.
import { dropIndexConcurrentlySql, dropIndexSql, dropParentSql, lockReferencedSql } from '../src/attachsql';
import { col, revenuesPlan } from './fixtures';

test('the index drops, the lock of a referenced table, the parent drop', () => {
  expect(dropIndexConcurrentlySql('public', 'revenues_ps_pkey_key')).toBe('DROP INDEX CONCURRENTLY IF EXISTS "public"."revenues_ps_pkey_key"');
  expect(dropIndexSql('app', 'revenues_history_pk_unique')).toBe('DROP INDEX "app"."revenues_history_pk_unique"');
  expect(lockReferencedSql('public', 'customers')).toBe('LOCK TABLE "public"."customers" IN ACCESS EXCLUSIVE MODE');
  expect(lockReferencedSql('my schema', 'a"b')).toBe('LOCK TABLE "my schema"."a""b" IN ACCESS EXCLUSIVE MODE');
  const tp = revenuesPlan(col('status', 'text'));
  expect(dropParentSql(tp)).toBe(`DROP TABLE "public".${JSON.stringify(tp.names.partitioned)}`);
});
