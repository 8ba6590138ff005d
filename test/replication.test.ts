// Issue 21 items 3 and 4: logical replication next to a switchover. Publications that name the
// table follow it to the partitioned table at cutover (column list and row filter too) and back
// at rollback, for both strategies; what cannot be carried (publish_via_partition_root = false,
// FOR ALL TABLES / TABLES IN SCHEMA, a table that is a subscription's target) is refused at
// preflight, naming the publication or subscription, before any change.
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../workflows/rollback';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, startTestWorker, uniqueId, waitFor, type TestDb, type TestWorker } from './helpers';

let db: TestDb;
let w: TestWorker;
let logical = false;

beforeAll(async () => {
  db = await createTestDb('repl_t');
  w = await startTestWorker({ default: db.url });
  logical = (await db.pool.query(`select current_setting('wal_level') = 'logical' as ok`)).rows[0].ok;
});
afterAll(async () => {
  await w?.stop();
  await db?.drop();
});

async function makeTable(name: string) {
  await db.pool.query(`
    create table ${name} (id bigserial primary key, occurred_at timestamptz not null, amount_cents bigint not null default 0, note text);
    insert into ${name} (occurred_at, amount_cents) select now() - (g % 120) * interval '1 day', g from generate_series(1, 400) g;
  `);
}

/** Every publication's tables as pg_publication_tables lists them, with columns and row filter. */
async function published(pub: string) {
  return (
    await db.pool.query(
      `select tablename::text as t, array_to_string(attnames, ',') as cols, rowfilter as filter from pg_publication_tables where pubname = $1 order by 1`,
      [pub],
    )
  ).rows;
}

/** Which relations the publication names (pg_publication_rel), by current name. */
async function members(pub: string) {
  return (
    await db.pool.query(
      `select r.prrelid::regclass::text as rel from pg_publication_rel r join pg_publication p on p.oid = r.prpubid where p.pubname = $1 order by 1`,
      [pub],
    )
  ).rows.map((r) => r.rel as string);
}

function run(input: Record<string, unknown>, prefix: string) {
  return w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId(prefix),
    args: [{ backup: 'none', approval: { required: false }, ...input }],
  });
}

async function rollback(switchoverWorkflowId: string): Promise<RollbackReport> {
  return w.client.workflow.execute('rollback', { taskQueue: w.taskQueue, workflowId: uniqueId('rb'), args: [{ switchoverWorkflowId }] });
}

for (const strategy of ['copy', 'attach'] as const) {
  test(`${strategy}: the publications naming the table (column list, row filter) name the partitioned table after cutover, the plain one after rollback`, async () => {
    const t = `pub_${strategy}`;
    await makeTable(t);
    await db.pool.query(`
      create publication ${t}_all_cols for table ${t} with (publish_via_partition_root = true);
      create publication ${t}_some for table ${t} (id, occurred_at, amount_cents) where (id > 10) with (publish_via_partition_root = true);
    `);
    const before = [await published(`${t}_all_cols`), await published(`${t}_some`)];
    expect(before[1]).toEqual([{ t, cols: 'id,occurred_at,amount_cents', filter: '(id > 10)' }]);

    // The dry run's plan says what happens to each publication, and its cutover SQL does it.
    const dry: SwitchoverReport = await (
      await run({ tables: [{ table: t, partitionKey: 'occurred_at', interval: 'month' }], strategy, dryRun: true }, t)
    ).result();
    expect(dry.plan!.tables[0].warnings.join('\n')).toMatch(
      new RegExp(
        `publication ${t}_some \\(publish_via_partition_root = true, columns id, occurred_at, amount_cents, row filter \\(id > 10\\)\\): at cutover the partitioned table takes public\\.${t}'s place`,
      ),
    );
    expect(dry.plan!.sql[t].cutover.join('\n')).toContain(
      `ALTER PUBLICATION "${t}_some" ADD TABLE "public"."${t}" ("id", "occurred_at", "amount_cents") WHERE ((id > 10))`,
    );

    const h = await run({ tables: [{ table: t, partitionKey: 'occurred_at', interval: 'month' }], strategy }, t);
    const report: SwitchoverReport = await h.result();
    expect(report.outcome).toBe('done');
    // The partitioned table under the table's own name, nothing else (not the legacy table, not the history partition).
    expect(await published(`${t}_all_cols`)).toEqual(before[0]);
    expect(await published(`${t}_some`)).toEqual(before[1]);
    expect(await members(`${t}_all_cols`)).toEqual([t]);
    expect((await db.pool.query(`select relkind::text as k from pg_class where oid = $1::regclass`, [t])).rows[0].k).toBe('p');
    // Writes still work (the column list covers the new replica identity, the primary key with the partition key).
    await db.pool.query(
      `update ${t} set amount_cents = amount_cents + 1 where id = 20; delete from ${t} where id = 21; insert into ${t} (occurred_at) values (now())`,
    );

    const rb = await rollback(h.workflowId);
    expect(rb.tables.map((x) => x.from)).toEqual(['cutover']);
    expect((await db.pool.query(`select relkind::text as k from pg_class where oid = $1::regclass`, [t])).rows[0].k).toBe('r');
    expect(await published(`${t}_all_cols`)).toEqual(before[0]);
    expect(await published(`${t}_some`)).toEqual(before[1]);
    expect(await members(`${t}_some`)).toEqual([t]);
  });
}

test('refused at preflight, naming the publication, nothing changed: publish_via_partition_root = false, FOR ALL TABLES, FOR TABLES IN SCHEMA, a column list without the partition key, REPLICA IDENTITY FULL', async () => {
  await db.pool.query(`create schema app`);
  await makeTable('pub_noroot');
  await makeTable('app.pub_inschema');
  await makeTable('pub_nokey');
  await makeTable('pub_full');
  await db.pool.query(`
    create publication noroot for table pub_noroot;
    create publication inschema for tables in schema app;
    create publication nokey for table pub_nokey (id, amount_cents) where (id > 0) with (publish_via_partition_root = true);
    alter table pub_full replica identity full;
  `);
  const cases: [string, string, RegExp][] = [
    [
      'public',
      'pub_noroot',
      /publication noroot publishes public\.pub_noroot with publish_via_partition_root = false: .*Run ALTER PUBLICATION "noroot" SET \(publish_via_partition_root = true\)/,
    ],
    [
      'app',
      'pub_inschema',
      /publication inschema is FOR TABLES IN SCHEMA: it would also publish the tables the switchover makes \(pub_inschema_partitioned and its partitions/,
    ],
    [
      'public',
      'pub_nokey',
      new RegExp(
        'publication nokey publishes public\\.pub_nokey with the column list \\(id, amount_cents\\), which leaves out the partition key occurred_at: .*PostgreSQL refuses every ' +
          'UPDATE and DELETE of a table whose published column list does not cover its replica identity\\. Add occurred_at to the column list \\(ALTER PUBLICATION "nokey" DROP TABLE "public"\\."pub_nokey", ' +
          'then ALTER PUBLICATION "nokey" ADD TABLE "public"\\."pub_nokey" \\("id", "amount_cents", "occurred_at"\\) WHERE \\(\\(id > 0\\)\\);',
      ),
    ],
    [
      'public',
      'pub_full',
      /public\.pub_full has REPLICA IDENTITY FULL, which the switchover does not carry: .*Run ALTER TABLE "public"\."pub_full" REPLICA IDENTITY DEFAULT first/,
    ],
  ];
  const schemaBefore = await dump(db.url, { schemaOnly: true });
  for (const [schema, table, why] of cases) {
    for (const strategy of ['copy', 'attach']) {
      const f = await failureOf(await run({ schema, tables: [{ table, partitionKey: 'occurred_at', interval: 'month' }], strategy }, `refuse-${table}`));
      expect(f.type).toBe('UnsupportedSchema');
      expect(f.message).toMatch(why);
      expect(f.message).toMatch(/Nothing was changed\.$/);
    }
  }
  expect(await dump(db.url, { schemaOnly: true })).toBe(schemaBefore);
  // FOR ALL TABLES covers every table: last, so it refuses nothing else in this file.
  await db.pool.query(`create publication everything for all tables`);
  const f = await failureOf(await run({ tables: [{ table: 'pub_noroot', partitionKey: 'occurred_at', interval: 'month' }] }, 'refuse-all'));
  expect(f.message).toMatch(/publication everything is FOR ALL TABLES: it would also publish the tables the switchover makes/);
  await db.pool.query(`drop publication everything`);
  expect(await dump(db.url, { schemaOnly: true })).toBe(schemaBefore);
});

/**
 * A second database on the same server subscribes to a publication of the first; the switchover
 * of the subscriber's table is refused, naming the subscription. With wal_level = logical the
 * subscription is live (a slot, its apply worker replicating a row first); with wal_level =
 * replica it connects to the publisher and lists its tables (pg_subscription_rel, as a live one
 * does) but cannot stream, and the test says so in its name.
 */
test(`subscription target refused at preflight, naming the subscription (live subscription when wal_level = logical, else connected without a slot)`, async () => {
  const sub = await createTestDb('repl_sub');
  const slot = `ps_${sub.name}`;
  try {
    await db.pool.query(`
      create table sub_t (id bigint primary key, occurred_at timestamptz not null, v text);
      insert into sub_t values (1, now(), 'one');
      create publication sub_pub for table sub_t with (publish_via_partition_root = true);
    `);
    await sub.pool.query(`create table sub_t (id bigint primary key, occurred_at timestamptz not null, v text)`);
    const conn = `dbname=${db.name} host=${new URL(db.url).hostname} port=${new URL(db.url).port || 5432} user=${decodeURIComponent(new URL(db.url).username)}`;
    if (logical) {
      // Same server: the slot is made apart from CREATE SUBSCRIPTION (which would wait on itself).
      await db.pool.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
      await sub.pool.query(`create subscription sub_s connection '${conn}' publication sub_pub with (create_slot = false, slot_name = '${slot}')`);
      await waitFor(async () => (await sub.pool.query(`select count(*)::int as n from sub_t`)).rows[0].n === 1, 'the initial sync');
      await db.pool.query(`insert into sub_t values (2, now(), 'two')`);
      await waitFor(async () => (await sub.pool.query(`select count(*)::int as n from sub_t`)).rows[0].n === 2, 'a replicated insert');
    } else {
      console.log(
        'wal_level is not logical: the subscription connects and lists its tables, but has no slot and does not stream (.ci/run sets wal_level = logical)',
      );
      await sub.pool.query(`create subscription sub_s connection '${conn}' publication sub_pub with (create_slot = false, slot_name = NONE, enabled = false)`);
    }
    expect((await sub.pool.query(`select srrelid::regclass::text as t from pg_subscription_rel`)).rows).toEqual([{ t: 'sub_t' }]);

    const ws = await startTestWorker({ default: sub.url });
    try {
      const before = await dump(sub.url, { schemaOnly: true });
      for (const strategy of ['copy', 'attach']) {
        const h = await ws.client.workflow.start('switchover', {
          taskQueue: ws.taskQueue,
          workflowId: uniqueId('sub'),
          args: [{ tables: [{ table: 'sub_t', partitionKey: 'occurred_at', interval: 'month' }], strategy, backup: 'none' }],
        });
        const f = await failureOf(h);
        expect(f.type).toBe('UnsupportedSchema');
        expect(f.message).toMatch(
          new RegExp(
            `public\\.sub_t is a target of subscription sub_s \\((enabled|disabled)\\): its apply worker writes to the table it subscribed \\(by oid\\), ` +
              `which after cutover is sub_t_legacy.*ALTER SUBSCRIPTION "sub_s" REFRESH PUBLICATION\\), then start again`,
          ),
        );
        expect(f.message).toMatch(/Nothing was changed\.$/);
      }
      expect(await dump(sub.url, { schemaOnly: true })).toBe(before);
      // The publisher's side of it switches over (its publication follows), and, live, the subscriber keeps receiving.
      const report: SwitchoverReport = await (await run({ tables: [{ table: 'sub_t', partitionKey: 'occurred_at', interval: 'month' }] }, 'pub-side')).result();
      expect(report.outcome).toBe('done');
      expect(await published('sub_pub')).toEqual([{ t: 'sub_t', cols: 'id,occurred_at,v', filter: null }]);
      if (logical) {
        await db.pool.query(`insert into sub_t values (3, now(), 'three'); update sub_t set v = 'uno' where id = 1`);
        await waitFor(
          async () => (await sub.pool.query(`select string_agg(id || v, ',' order by id) as s from sub_t`)).rows[0].s === '1uno,2two,3three',
          'writes after cutover replicated',
        );
      }
    } finally {
      await ws.stop();
    }
  } finally {
    await sub.pool.query(`alter subscription sub_s disable`).catch(() => undefined);
    await sub.pool.query(`alter subscription sub_s set (slot_name = none)`).catch(() => undefined);
    await sub.pool.query(`drop subscription if exists sub_s`).catch(() => undefined);
    await db.pool.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [slot]).catch(() => undefined);
    await sub.drop();
  }
});

test('live, both strategies (only when wal_level = logical; otherwise it logs that it did not run): every write after cutover and after rollback reaches the subscriber', async () => {
  if (!logical) {
    console.log('wal_level is not logical: the live replication test did not run (.ci/run sets wal_level = logical)');
    return;
  }
  const sub = await createTestDb('repl_live');
  const slot = `ps_${sub.name}`;
  const tables = ['live_copy', 'live_attach'];
  const ddl = (t: string) => `create table ${t} (id bigint primary key, at timestamptz not null, v text)`;
  try {
    for (const t of tables) {
      await db.pool.query(`${ddl(t)}; insert into ${t} select g, now() - (g % 50) * interval '1 day', 'v' || g from generate_series(1, 100) g`);
      await sub.pool.query(ddl(t));
    }
    await db.pool.query(`create publication live_pub for table ${tables.join(', ')} with (publish_via_partition_root = true)`);
    await db.pool.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const u = new URL(db.url);
    await sub.pool.query(
      `create subscription live_s connection 'dbname=${db.name} host=${u.hostname} port=${u.port || 5432} user=${decodeURIComponent(u.username)}' publication live_pub with (create_slot = false, slot_name = '${slot}')`,
    );
    const same = (t: string) =>
      waitFor(async () => {
        const q = `select coalesce(string_agg(id || ':' || at::text || ':' || v, ',' order by id), '') as s from ${t}`;
        const [a, b] = await Promise.all([db.pool.query(q), sub.pool.query(q)]);
        return a.rows[0].s === b.rows[0].s && a.rows[0].s !== '';
      }, `${t} replicated`);
    for (const t of tables) await same(t);
    for (const [i, t] of tables.entries()) {
      const h = await run({ tables: [{ table: t, partitionKey: 'at', interval: 'month' }], strategy: i === 0 ? 'copy' : 'attach' }, t);
      expect(((await h.result()) as SwitchoverReport).outcome).toBe('done');
      // After cutover: an insert now, one a year ahead (a new partition), an update moving a row across partitions, a delete.
      await db.pool.query(`insert into ${t} values (1001, now(), 'after'), (1002, now() + interval '1 year', 'ahead');
        update ${t} set at = now() + interval '2 months', v = 'moved' where id = 1; delete from ${t} where id = 2`);
      await same(t);
      await rollback(h.workflowId);
      await db.pool.query(`insert into ${t} values (1003, now(), 'after rollback'); update ${t} set v = 'again' where id = 1002`);
      await same(t);
    }
  } finally {
    await sub.pool.query(`alter subscription live_s disable`).catch(() => undefined);
    await sub.pool.query(`alter subscription live_s set (slot_name = none)`).catch(() => undefined);
    await sub.pool.query(`drop subscription if exists live_s`).catch(() => undefined);
    await db.pool.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [slot]).catch(() => undefined);
    await sub.drop();
  }
});
