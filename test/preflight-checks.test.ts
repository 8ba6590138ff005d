// Issue 21 items 9 and 11: what used to fail late is decided at preflight, before any change.
// NOT VALID constraints: carried validated when no row violates them (both strategies), else
// refused naming the constraint and the statement to run. Types with no extended hash (bit,
// varbit, domains over json or point) are hashed as text. BEFORE ROW triggers that assign the
// partition key are refused; other BEFORE ROW triggers get a plan line.
import { preflightPlan } from '../activities/preflight';
import { assignsKey } from '../src/preflightchecks';
import { switchoverInput } from '../src/input';
import { violationWhere } from '../src/preflightsql';
import type { SwitchoverReport } from '../workflows/switchover';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, startTestWorker, tableRows, uniqueId, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;

beforeAll(async () => {
  db = await createTestDb('pfc_t');
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

function run(input: Record<string, unknown>, prefix: string) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(prefix),
    args: [{ backup: 'none', approval: { required: false }, ...input }],
  });
}

async function preflightOf(input: Record<string, unknown>) {
  const c = await db.pool.connect();
  try {
    return await preflightPlan(c, switchoverInput.parse(input));
  } finally {
    c.release();
  }
}

const validated = async (table: string) =>
  (
    await db.pool.query(
      `select conname::text as name, convalidated as ok from pg_constraint where conrelid = $1::regclass and contype in ('c', 'f') order by 1`,
      [table],
    )
  ).rows;

/** A parent, and a child whose CHECK and foreign key were added NOT VALID over rows that (if `bad`) violate them. */
async function makeChild(name: string, bad: { fk?: boolean; check?: boolean } = {}) {
  await db.pool.query(`
    create table ${name}_parent (id bigint primary key);
    insert into ${name}_parent select generate_series(1, 20);
    create table ${name} (id bigserial primary key, parent_id bigint, qty int not null, at timestamptz not null);
    insert into ${name} (parent_id, qty, at) select 1 + g % 20, 1 + g % 7, now() - (g % 90) * interval '1 day' from generate_series(1, 300) g;
    ${bad.fk ? `insert into ${name} (parent_id, qty, at) values (999, 1, now()), (998, 2, now());` : ''}
    ${bad.check ? `insert into ${name} (parent_id, qty, at) values (1, -5, now());` : ''}
    insert into ${name} (parent_id, qty, at) values (null, 3, now());
    alter table ${name} add constraint ${name}_parent_fk foreign key (parent_id) references ${name}_parent (id) not valid;
    alter table ${name} add constraint ${name}_qty_pos check (qty > 0) not valid;
  `);
}

for (const strategy of ['copy', 'attach'] as const) {
  test(`${strategy}: NOT VALID CHECK and foreign key that no row violates are carried validated; the switchover completes`, async () => {
    const t = `nv_ok_${strategy}`;
    await makeChild(t);
    const before = await tableRows(db.pool, t);
    const dry: SwitchoverReport = await (await run({ tables: [{ table: t, partitionKey: 'at', interval: 'month' }], strategy, dryRun: true }, t)).result();
    const lines = dry.plan!.tables[0].warnings.join('\n');
    expect(lines).toContain(`foreign key ${t}_parent_fk on public.${t} is NOT VALID; no row violates it`);
    expect(lines).toContain(`CHECK constraint ${t}_qty_pos on public.${t} is NOT VALID; no row violates it`);
    expect(dry.plan!.tables[0].foreignKeys[0].definition).not.toMatch(/NOT VALID/);

    const report: SwitchoverReport = await (await run({ tables: [{ table: t, partitionKey: 'at', interval: 'month' }], strategy }, t)).result();
    expect(report.outcome).toBe('done');
    expect(await tableRows(db.pool, t)).toEqual(before);
    expect(await validated(t)).toEqual([
      { name: `${t}_parent_fk`, ok: true },
      { name: `${t}_qty_pos`, ok: true },
    ]);
    // Still enforced.
    await expect(db.pool.query(`insert into ${t} (parent_id, qty, at) values (1, 0, now())`)).rejects.toThrow(/violates check constraint/);
    await expect(db.pool.query(`insert into ${t} (parent_id, qty, at) values (777, 1, now())`)).rejects.toThrow(/violates foreign key constraint/);
  });
}

test('NOT VALID constraints with violating rows: refused at preflight naming each and the statement to run, nothing changed', async () => {
  await makeChild('nv_bad', { fk: true, check: true });
  const before = await dump(db.url);
  for (const strategy of ['copy', 'attach']) {
    const f = await failureOf(await run({ tables: [{ table: 'nv_bad', partitionKey: 'at', interval: 'month' }], strategy }, 'nv-bad'));
    expect(f.type).toBe('UnsupportedSchema');
    expect(f.message).toContain(
      'foreign key nv_bad_parent_fk on public.nv_bad is NOT VALID and 2 rows violate it (SELECT * FROM "public"."nv_bad" t WHERE t."parent_id" IS NOT NULL AND ' +
        'NOT EXISTS (SELECT 1 FROM "public"."nv_bad_parent" r WHERE r."id" = t."parent_id")); a partitioned table cannot have a NOT VALID foreign key, so those rows could not be carried over. ' +
        'Fix or delete them and run ALTER TABLE "public"."nv_bad" VALIDATE CONSTRAINT "nv_bad_parent_fk" (or drop the constraint), then start again',
    );
    expect(f.message).toContain(
      'CHECK constraint nv_bad_qty_pos on public.nv_bad is NOT VALID and 1 row violates it (SELECT * FROM "public"."nv_bad" t WHERE NOT ((qty > 0))); ' +
        'the partitioned table has it validated, so those rows could not be carried over. Fix or delete them and run ALTER TABLE "public"."nv_bad" VALIDATE CONSTRAINT "nv_bad_qty_pos"',
    );
    expect(f.message).toMatch(/Nothing was changed\.$/);
  }
  expect(await dump(db.url)).toBe(before);
});

test('types with no extended hash (bit, varbit, arrays of it, domains over json and point): hashed as text, both strategies complete', async () => {
  await db.pool.query(`
    create domain doc_json as json;
    create domain spot as point;
    create table odd (id bigint primary key, at date not null, flags bit(4), mask varbit, masks varbit[], doc doc_json, place spot, plain json);
    insert into odd select g, current_date - g, (g % 16)::bit(4), (g % 5)::bit(3)::varbit, array[(g % 3)::bit(2)::varbit], json_build_object('g', g)::doc_json,
      point(g, g / 3.0)::spot, json_build_object('h', g) from generate_series(1, 120) g;
    create table odd2 (like odd including all);
    insert into odd2 select * from odd;
  `);
  const plan = await preflightOf({ tables: [{ table: 'odd', partitionKey: 'at', interval: 'month' }] });
  expect(plan.tables[0].columns.filter((c) => c.hashAs).map((c) => `${c.name}:${c.hashAs}`)).toEqual([
    'flags:text',
    'mask:text',
    'masks:text',
    'doc:text',
    'place:text',
  ]);
  expect(plan.tables[0].warnings).toContain(
    'column mask (bit varying) has no extended hash function: checksums and verification hash its text form (mask::text), which is exact',
  );
  for (const [table, strategy] of [
    ['odd', 'copy'],
    ['odd2', 'attach'],
  ]) {
    const before = await tableRows(db.pool, table);
    const report: SwitchoverReport = await (await run({ tables: [{ table, partitionKey: 'at', interval: 'month' }], strategy }, table)).result();
    expect(report.outcome).toBe('done');
    expect(await tableRows(db.pool, table)).toEqual(before);
  }
});

test('a BEFORE ROW trigger that assigns the partition key is refused naming it, nothing changed; one that does not is a plan line', async () => {
  await db.pool.query(`
    create table stamped (id bigint primary key, at timestamptz not null, note text);
    insert into stamped select g, now() - g * interval '1 day', 'n' from generate_series(1, 50) g;
    create function stamped_at() returns trigger language plpgsql as $$
    begin
      if new.at = old.at then return new; end if;
      NEW."at" := coalesce(NEW.at, now());
      return new;
    end $$;
    create trigger stamped_at before insert or update on stamped for each row execute function stamped_at();
    create table noted (id bigint primary key, at timestamptz not null, note text);
    create function noted_note() returns trigger language plpgsql as $$ begin if new.at = old.at then new.note := 'same'; end if; return new; end $$;
    create trigger noted_note before update on noted for each row execute function noted_note();
  `);
  const before = await dump(db.url);
  for (const strategy of ['copy', 'attach']) {
    const f = await failureOf(await run({ tables: [{ table: 'stamped', partitionKey: 'at', interval: 'month' }], strategy }, 'stamped'));
    expect(f.type).toBe('UnsupportedSchema');
    expect(f.message).toContain(
      'trigger stamped_at on public.stamped is a BEFORE ... FOR EACH ROW trigger whose function stamped_at() assigns NEW.at, the partition key: ' +
        'on the partitioned table a row is routed to its partition before the trigger runs, so after cutover every write whose key it moves to another partition fails ' +
        '(moving row to another partition during a BEFORE FOR EACH ROW trigger is not supported). Set at in the application or by a column DEFAULT instead, or drop the trigger, then start again',
    );
    expect(f.message).toMatch(/Nothing was changed\.$/);
  }
  expect(await dump(db.url)).toBe(before);
  const plan = await preflightOf({ tables: [{ table: 'noted', partitionKey: 'at', interval: 'month' }] });
  expect(plan.tables[0].warnings).toContain(
    'trigger noted_note on public.noted is a BEFORE ... FOR EACH ROW trigger (function noted_note(), whose source does not assign NEW.at): ' +
      "after cutover it runs once the row is routed to its partition; should it change at to another partition's range, that write fails " +
      '(moving row to another partition during a BEFORE FOR EACH ROW trigger is not supported)',
  );
});

test('assignsKey reads assignments, not comparisons', () => {
  const cases: [string, string, boolean][] = [
    ['begin new.at := now(); return new; end', 'at', true],
    ['begin\n  NEW."at" = coalesce(NEW.at, now());\n return new; end', 'at', true],
    ['begin if new.at = old.at then return new; end if; return new; end', 'at', false],
    ['begin if x then new.at := old.at; end if; return new; end', 'at', true],
    ['begin new.note := 1; new.atx := 2; return new; end', 'at', false],
    ['begin new."Booked At" := now(); return new; end', 'Booked At', true],
  ];
  for (const [src, key, want] of cases) expect([src, assignsKey(src, key)]).toEqual([src, want]);
});

test('violation queries: CHECK (NULL passes), foreign key MATCH SIMPLE and MATCH FULL', () => {
  const fk = { name: 'f', type: 'f' as const, check_expr: null, columns: ['a', 'b'], ref_schema: 's', ref_table: 'r', ref_columns: ['x', 'y'], match: 's' };
  expect(violationWhere({ ...fk, type: 'c', check_expr: '(q > 0)' })).toBe('NOT ((q > 0))');
  expect(violationWhere(fk)).toBe('t."a" IS NOT NULL AND t."b" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "s"."r" r WHERE r."x" = t."a" AND r."y" = t."b")');
  expect(violationWhere({ ...fk, match: 'f' })).toBe(
    '(t."a" IS NOT NULL OR t."b" IS NOT NULL) AND (NOT (t."a" IS NOT NULL AND t."b" IS NOT NULL) OR NOT EXISTS (SELECT 1 FROM "s"."r" r WHERE r."x" = t."a" AND r."y" = t."b"))',
  );
});
