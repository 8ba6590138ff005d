// The load generator's SQL pinned as exact strings (src/loadsql.ts): identifiers quoted, the row's
// key $1..$n cast to each key column's type, the new key or the interval $n+1.
import { columnChange, loadDeleteSql, loadInsertSql, loadMaxSql, loadMoveSql, loadRangeSql, loadSampleSql, loadUpdateSql } from '../src/loadsql';

const readings = {
  schema: 'public',
  table: 'readings',
  key: [
    { name: 'sensor_id', type: 'integer' },
    { name: 'seq', type: 'integer' },
  ],
};
const events = { schema: 'app', table: 'events', key: [{ name: 'id', type: 'bigint' }] };

test('the sample, the max of an integer key, the range a move keeps to', () => {
  expect(loadSampleSql(readings, 1000)).toBe(`select "sensor_id"::text, "seq"::text from "public"."readings" order by random() limit 1000`);
  expect(loadMaxSql(events, 'id')).toBe(`select max("id")::text as max from "app"."events"`);
  expect(loadRangeSql(events, 'happened_at', 'timestamp', 'month', false)).toBe(
    `select (date_trunc('month', min("happened_at")) - '1 month'::interval)::text as lo, ` +
      `(date_trunc('month', max("happened_at")) + 2 * '1 month'::interval - interval '1 microsecond')::text as hi from "app"."events"`,
  );
  expect(loadRangeSql(readings, 'taken_on', 'date', 'quarter', true)).toBe(
    `select min("taken_on"::timestamp)::text as lo, max("taken_on"::timestamp)::text as hi from "public"."readings"`,
  );
  expect(loadRangeSql(events, 'at', 'timestamptz', 'quarter', false)).toContain(`min(("at" at time zone 'UTC'))) - '3 months'::interval`);
});

test('a clone with a new key above the max, or a new uuid', () => {
  const cols = [
    { name: 'id', type: 'bigint' },
    { name: 'kind', type: 'text' },
  ];
  expect(loadInsertSql(events, cols, { column: 'id', how: 'above-max' })).toBe(
    `insert into "app"."events" ("id", "kind") select $2::bigint, "kind" from "app"."events" where "id" = $1::bigint limit 1 returning "id"::text`,
  );
  expect(loadInsertSql(events, cols, { column: 'id', how: 'uuid' })).toBe(
    `insert into "app"."events" ("id", "kind") select gen_random_uuid(), "kind" from "app"."events" where "id" = $1::bigint limit 1 returning "id"::text`,
  );
});

test("an update's change per type", () => {
  const c = (name: string, base: string, typmod = -1, typtype = 'b') => columnChange({ name, base, typmod, typtype });
  expect(loadUpdateSql(readings, 'value', c('value', 'float8')!.expr)).toBe(
    `update "public"."readings" set "value" = "value" + 1 where "sensor_id" = $1::integer and "seq" = $2::integer`,
  );
  expect(c('paid', 'bool')).toEqual({ change: 'flipped', expr: `not "paid"` });
  expect(c('at', 'timestamptz')).toEqual({ change: '+1s', expr: `"at" + interval '1 second'` });
  expect(c('day', 'date')).toEqual({ change: '+1 day', expr: `"day" + 1` });
  expect(c('note', 'varchar', 16)).toEqual({
    change: "last character replaced by '*' or '#'",
    expr: `left("note", 11) || case when right("note", 1) = '*' then '#' else '*' end`,
  });
  expect(c('memo', 'text')).toEqual({
    change: "'*' appended or removed",
    expr: `case when right("memo", 1) = '*' then left("memo", -1) else "memo" || '*' end`,
  });
  expect(c('mood', 'mood', -1, 'e')).toBeNull();
  expect(c('doc', 'jsonb')).toBeNull();
});

test('a move within the range, back when forward leaves it; the delete', () => {
  const range = { from: '2026-03-01 00:00:00', to: '2026-05-31 23:59:59.999999' };
  const lo = `'2026-03-01 00:00:00'::timestamp`;
  const hi = `'2026-05-31 23:59:59.999999'::timestamp`;
  expect(loadMoveSql(readings, 'taken_on', 'date', range)).toBe(
    `update "public"."readings" set "taken_on" = (case when "taken_on"::timestamp + $3::interval between ${lo} and ${hi} then "taken_on"::timestamp + $3::interval ` +
      `else "taken_on"::timestamp - $3::interval end)::date where "sensor_id" = $1::integer and "seq" = $2::integer and ` +
      `("taken_on"::timestamp + $3::interval between ${lo} and ${hi} or "taken_on"::timestamp - $3::interval between ${lo} and ${hi}) returning "sensor_id"::text, "seq"::text`,
  );
  const utc = `("at" at time zone 'UTC')`;
  expect(loadMoveSql(events, 'at', 'timestamptz', range)).toBe(
    `update "app"."events" set "at" = ((case when ${utc} + $2::interval between ${lo} and ${hi} then ${utc} + $2::interval else ${utc} - $2::interval end) at time zone 'UTC') ` +
      `where "id" = $1::bigint and (${utc} + $2::interval between ${lo} and ${hi} or ${utc} - $2::interval between ${lo} and ${hi}) returning "id"::text`,
  );
  expect(loadMoveSql(events, 'at', 'timestamp', range)).toMatch(/^update "app"."events" set "at" = \(case when "at" \+ \$2::interval between /);
  expect(loadDeleteSql(readings)).toBe(
    `delete from "public"."readings" where "sensor_id" = $1::integer and "seq" = $2::integer returning "sensor_id"::text, "seq"::text`,
  );
});
