// The cutover's own reads pinned as exact strings (src/cutoversql.ts): identifiers quoted.
import { rowCountSql } from '../src/cutoversql';

test('the row count of a table', () => {
  expect(rowCountSql('public', 'revenues_partitioned')).toBe('SELECT count(*) AS n FROM "public"."revenues_partitioned"');
  expect(rowCountSql('My Schema', 'a"b')).toBe('SELECT count(*) AS n FROM "My Schema"."a""b"');
});
