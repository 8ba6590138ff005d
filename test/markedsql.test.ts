// The rehearsal's marked rows pinned as exact strings (src/markedsql.ts).
import { cloneInsertSql, keyLiteral, keyLiteralWhere, markedWhere, markerBase, sampleRowSql, touchColumn } from '../src/markedsql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('amount_cents', 'bigint'), { sumColumns: ['amount_cents'] });
const small = revenuesPlan(col('note', 'text'), {
  columns: [
    { name: 'id', type: 'smallint', notNull: true, generated: false, identity: 'a' },
    col('occurred_at', 'timestamp with time zone'),
    col('note', 'text'),
  ],
});

test('the marker: far below any sequence, by the id type; none without an integer key', () => {
  expect(markerBase(tp)).toBe(-2_000_000_000);
  expect(markerBase(small)).toBe(-32000);
  expect(markerBase({ ...tp, splitColumn: null })).toBeNull();
  expect(markedWhere(tp)).toBe('"id" <= -2000000000');
});

test('keys and days as literals; the touch column', () => {
  expect(keyLiteralWhere(tp, ['7'])).toBe(`"id" = '7'::bigint`);
  expect(keyLiteral(tp, '2024-01-01')).toBe(`'2024-01-01 00:00:00+00'::timestamp with time zone`);
  expect(touchColumn(tp)).toEqual({ column: 'amount_cents', set: '"amount_cents" = "amount_cents" + 1' });
  expect(touchColumn(small)).toEqual({ column: 'note', set: '"note" = "note"' });
  expect(sampleRowSql(tp)).toBe('SELECT "id"::text, "occurred_at"::text FROM "public"."revenues" ORDER BY "id" LIMIT 1');
});

test('a clone of a row: upsert on the key, OVERRIDING SYSTEM VALUE for an identity always', () => {
  expect(cloneInsertSql(tp, { sampleKey: ['7'], id: -2000000000, day: '2024-01-01', upsert: true })).toBe(
    `INSERT INTO "public"."revenues" ("id", "occurred_at", "amount_cents") SELECT -2000000000::bigint, '2024-01-01 00:00:00+00'::timestamp with time zone, "amount_cents" ` +
      `FROM "public"."revenues" WHERE "id" = '7'::bigint ON CONFLICT ("id") DO UPDATE SET "amount_cents" = EXCLUDED."amount_cents"`,
  );
  expect(cloneInsertSql(small, { sampleKey: ['7'], id: -32000, day: '2024-01-01' })).toBe(
    `INSERT INTO "public"."revenues" ("id", "occurred_at", "note") OVERRIDING SYSTEM VALUE SELECT -32000::smallint, '2024-01-01 00:00:00+00'::timestamp with time zone, "note" ` +
      `FROM "public"."revenues" WHERE "id" = '7'::smallint`,
  );
});
