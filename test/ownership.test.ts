// Tables owned by an application role that is not the worker's, on the real dev server and
// database: after cutover, after a rollback and after cleanup the owner still reads, writes and
// draws ids (serial and identity), and a reader keeps its table and column grants. A worker role
// that could not hand the new table to the owner is refused at preflight, with nothing changed.
import { randomBytes } from 'node:crypto';
import { approveSignal } from '../src/shared';
import type { SwitchoverReport } from '../workflows/switchover';
import type { RollbackReport } from '../workflows/rollback';
import { dump, failureOf } from './failure-helpers';
import { createTestDb, startTestWorker, uniqueId, waitForPhase, type TestDb, type TestWorker, dropRoles } from './helpers';

const suffix = randomBytes(4).toString('hex');
const app = `app_${suffix}`;
const reader = `reader_${suffix}`;
const workerRole = `wk_${suffix}`;
let db: TestDb;
let w: TestWorker;
let limited: TestWorker | undefined;

beforeAll(async () => {
  db = await createTestDb();
  await db.pool.query(`create role ${app} nologin`);
  await db.pool.query(`create role ${reader} nologin`);
  await db.pool.query(`create role ${workerRole} login`);
  w = await startTestWorker({ default: db.url });
});
afterAll(async () => {
  await w?.stop();
  await limited?.stop();
  await db?.drop();
  await dropRoles(app, reader, workerRole);
});

/** Schema `schema` with `t` (serial key, granted to the reader: SELECT and UPDATE (note)) and `u` (identity key, owner only), made by the app role. */
async function makeTables(schema: string) {
  await db.pool.query(`create schema ${schema}`);
  await db.pool.query(`grant usage, create on schema ${schema} to ${app}`);
  await db.pool.query(`grant usage on schema ${schema} to ${reader}`);
  const c = await db.pool.connect();
  try {
    await c.query(`set role ${app}`);
    await c.query(`create table ${schema}.t (id serial primary key, occurred_at date not null, amount numeric(12,2) not null default 0, note text)`);
    await c.query(`insert into ${schema}.t (occurred_at, amount) select current_date - (g % 150), g from generate_series(1, 200) g`);
    await c.query(`grant select on ${schema}.t to ${reader}`);
    await c.query(`grant update (note) on ${schema}.t to ${reader}`);
    await c.query(`create table ${schema}.u (id bigint generated always as identity primary key, occurred_at date not null, note text)`);
    await c.query(`insert into ${schema}.u (occurred_at) select current_date - (g % 150) from generate_series(1, 200) g`);
  } finally {
    await c.query('reset role');
    c.release();
  }
}

/** As the app role: read, insert, update, delete and nextval on both tables; as the reader: read and update its column only. */
async function expectAccess(schema: string) {
  const c = await db.pool.connect();
  try {
    await c.query(`set role ${app}`);
    for (const t of ['t', 'u']) {
      const before = Number((await c.query(`select count(*) from ${schema}.${t}`)).rows[0].count);
      const id = (await c.query(`insert into ${schema}.${t} (occurred_at, note) values (current_date, 'app') returning id`)).rows[0].id;
      expect(Number(id)).toBeGreaterThan(200);
      expect((await c.query(`update ${schema}.${t} set note = 'app2' where id = $1`, [id])).rowCount).toBe(1);
      const next = (await c.query(`select nextval(pg_get_serial_sequence($1, 'id')) as n`, [`${schema}.${t}`])).rows[0].n;
      expect(Number(next)).toBeGreaterThan(Number(id));
      expect((await c.query(`delete from ${schema}.${t} where id = $1`, [id])).rowCount).toBe(1);
      expect(Number((await c.query(`select count(*) from ${schema}.${t}`)).rows[0].count)).toBe(before);
    }
    await c.query('reset role');
    await c.query(`set role ${reader}`);
    expect(Number((await c.query(`select count(*) from ${schema}.t`)).rows[0].count)).toBeGreaterThanOrEqual(200);
    expect((await c.query(`update ${schema}.t set note = 'read' where id = 1`)).rowCount).toBe(1);
    await expect(c.query(`update ${schema}.t set amount = 0 where id = 1`)).rejects.toThrow(/permission denied/);
    await expect(c.query(`select count(*) from ${schema}.u`)).rejects.toThrow(/permission denied/);
  } finally {
    await c.query('reset role');
    c.release();
  }
  // The table and every partition of it belong to the app role.
  const owners = await db.pool.query(
    `select distinct pg_get_userbyid(c.relowner) as owner from pg_class c
     where c.oid in ($1::regclass, $2::regclass) or c.oid in (select inhrelid from pg_inherits where inhparent in ($1::regclass, $2::regclass))`,
    [`${schema}.t`, `${schema}.u`],
  );
  expect(owners.rows).toEqual([{ owner: app }]);
}

async function switchOver(schema: string, extra: Record<string, unknown> = {}): Promise<string> {
  const id = uniqueId('own');
  const handle = await w.client.workflow.start('switchover', {
    taskQueue: w.taskQueue,
    workflowId: id,
    args: [{ schema, tables: ['t', 'u'].map((table) => ({ table, partitionKey: 'occurred_at', interval: 'month' })), batchSize: 100, ...extra }],
  });
  await waitForPhase(handle, 'awaiting_approval', 90000);
  await handle.signal(approveSignal, { by: 'alice' });
  const report: SwitchoverReport = await handle.result();
  expect(report.outcome).toBe('done');
  return id;
}

test('owned by an application role: after cutover and after cleanup, the owner and the reader keep their access', async () => {
  await makeTables('own_a');
  await switchOver('own_a');
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'own_a.t'::regclass`)).rows[0].relkind).toBe('p');
  await expectAccess('own_a');
  // Partitions that maintenance makes later belong to the table's owner too (it can drop them for retention).
  const maintained = await w.client.workflow.execute('maintainPartitions', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('own-maintain'),
    args: [{ schema: 'own_a', premake: 9, defaultPartition: true }],
  });
  expect(maintained.tables.flatMap((t: { created: string[] }) => t.created).length).toBeGreaterThanOrEqual(8);
  await expectAccess('own_a');
  const cleaned: SwitchoverReport = await w.client.workflow.execute('switchover', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('own-clean'),
    args: [{ schema: 'own_a', tables: ['t', 'u'].map((table) => ({ table, partitionKey: 'occurred_at', interval: 'month' })), mode: 'cleanup' }],
  });
  expect(cleaned.outcome).toBe('cleaned');
  await expectAccess('own_a');
});

test('the backup of a table owned by an application role belongs to that role, and its reader may read it', async () => {
  await makeTables('own_bk');
  await switchOver('own_bk', { backup: 'table' });
  const r = await db.pool.query(
    `select c.relname::text as t, pg_get_userbyid(c.relowner)::text as owner, has_table_privilege($1, c.oid, 'SELECT') as reads, has_table_privilege($1, c.oid, 'UPDATE') as writes
     from pg_class c where c.oid in ('own_bk.t_backup'::regclass, 'own_bk.u_backup'::regclass) order by 1`,
    [reader],
  );
  expect(r.rows).toEqual([
    { t: 't_backup', owner: app, reads: true, writes: false },
    { t: 'u_backup', owner: app, reads: false, writes: false },
  ]);
});

test('owned by an application role: after a rollback past cutover, the owner and the reader keep their access', async () => {
  await makeTables('own_b');
  const id = await switchOver('own_b');
  const rb: RollbackReport = await w.client.workflow.execute('rollback', {
    taskQueue: w.taskQueue,
    workflowId: uniqueId('own-rb'),
    args: [{ switchoverWorkflowId: id, schema: 'own_b' }],
  });
  expect(rb.tables.map((t) => t.from)).toEqual(['cutover', 'cutover']);
  expect((await db.pool.query(`select relkind::text from pg_class where oid = 'own_b.t'::regclass`)).rows[0].relkind).toBe('r');
  await expectAccess('own_b');
});

test('a worker role that is neither superuser nor a member of the owner role is refused at preflight, nothing changed', async () => {
  await makeTables('own_c');
  const url = new URL(db.url);
  url.username = workerRole;
  limited = await startTestWorker({ default: url.toString() });
  const before = await dump(db.url, { withState: true });
  const handle = await limited.client.workflow.start('switchover', {
    taskQueue: limited.taskQueue,
    workflowId: uniqueId('own-refused'),
    args: [{ schema: 'own_c', tables: [{ table: 't', partitionKey: 'occurred_at', interval: 'month' }], approval: { required: false } }],
  });
  const f = await failureOf(handle);
  expect(f.type).toBe('UnsupportedSchema');
  expect(f.message).toContain(
    `own_c.t is owned by role ${app}, and the worker's role ${workerRole} is neither superuser nor a member of it, ` +
      `so it cannot give the new table the same owner; run GRANT "${app}" TO "${workerRole}"`,
  );
  expect(await dump(db.url, { withState: true })).toEqual(before);
});
