// The rehearsal's first phase (activities/rehearsal-checks.ts registers these): which target it may
// touch, and the environment checks (server, extensions, disk, long transactions, timeouts,
// permissions). Read only.
import { statfs } from 'node:fs/promises';
import type pg from 'pg';
import { sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import { bad, ok, warn, type Check, type PhaseOutcome } from '../src/rehearsal-report';
import { Deps, stage } from './context';

/**
 * What a target's server says it is: its cluster's system identifier, the database's oid and
 * name, and whether the worker reaches it on this host. Two targets are the same database when
 * the first two match, however their connection strings are spelled (host names, sockets,
 * users). Never derived from the URL, so no URL (or password in it) ever reaches a result.
 */
export interface TargetIdentity {
  system: string;
  databaseOid: string;
  database: string;
  /** Reached through a Unix socket or a loopback address: the database host is the worker's. */
  local: boolean;
}

export async function targetIdentity(c: pg.ClientBase): Promise<TargetIdentity> {
  const r = (await c.query(sqlFile('rehearsal/target_identity'))).rows[0];
  return { system: r.system, databaseOid: r.database_oid, database: r.database, local: r.local };
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

/** What the target `name` says it is; a role that may not ask is refused (the targets cannot be told apart). */
async function identify(database: string, name: string, pool: pg.Pool): Promise<TargetIdentity> {
  try {
    return await withClient(pool, targetIdentity);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // Without the server's answer the targets cannot be told apart: refuse, never guess.
    if (code === '42501') {
      throw fail(
        'PermissionDenied',
        `cannot tell whether target "${database}" is the same database as "default": target "${name}" does not let this role ` +
          `read pg_control_system() (GRANT EXECUTE ON FUNCTION pg_control_system() TO <worker role>). Nothing was changed.`,
        { database: name },
      );
    }
    throw err;
  }
}

/**
 * Refuses a target that is `default` or the same database as `default`, comparing what both
 * servers say they are (system identifier and database oid), and refuses when it cannot tell.
 */
export async function rehearsalTarget({ pools }: Deps, database: string, forecastDatabase?: string): Promise<{ server: string }> {
  if (forecastDatabase) pools.get(forecastDatabase); // an unknown forecast target fails now, not at sign-off
  if (database === 'default') {
    throw fail('InvalidInput', 'a rehearsal runs on a staging target, never on "default"; nothing was changed');
  }
  const staging = pools.get(database);
  return stage('environment', undefined, async () => {
    const mine = await identify(database, database, staging);
    if (pools.names().includes('default')) {
      const production = await identify(database, 'default', pools.get('default'));
      if (production.system === mine.system && production.databaseOid === mine.databaseOid) {
        throw fail(
          'InvalidInput',
          `database target "${database}" is the same database as "default" (database "${mine.database}" on server ${mine.system}); ` +
            `a rehearsal must run on a separate staging copy. Nothing was changed.`,
          { database },
        );
      }
    }
    return { server: `database "${mine.database}" on server ${mine.system}` };
  });
}

type EnvironmentInput = { database: string; schema: string; tables: string[]; backup: 'table' | 'none' };

async function one(c: pg.ClientBase, name: string, values: unknown[] = []) {
  return (await c.query(sqlFile(`rehearsal/${name}`), values)).rows[0];
}

async function versionCheck(c: pg.ClientBase, checks: Check[]): Promise<{ version: string }> {
  const v = await one(c, 'server_version');
  checks.push(
    v.num >= 140000
      ? ok('server version', `PostgreSQL ${v.version}`)
      : bad('server version', `PostgreSQL ${v.version}: the switchover needs 14 or later (CREATE OR REPLACE TRIGGER, hash_record_extended)`),
  );
  return v;
}

/** Where free space is measured: statfs of the data directory, only when the server is on this host. */
async function freeSpace(c: pg.ClientBase, dir: string | null): Promise<{ free: number | null; how: string }> {
  if (!dir) return { free: null, how: 'data_directory is hidden from this role (needs pg_read_all_settings)' };
  if (!(await targetIdentity(c)).local) return { free: null, how: 'the server is remote (reached over the network); SQL offers no free-space function' };
  try {
    const fs = await statfs(dir);
    return { free: Number(fs.bavail) * Number(fs.bsize), how: `statfs(${dir}) on the worker host, which is the database host` };
  } catch (err) {
    return { free: null, how: `statfs(${dir}) failed on the worker host (${(err as Error).message})` };
  }
}

/** Space the switchover needs: the partitioned copy (heap and indexes), and the backup heap. */
async function diskCheck(c: pg.ClientBase, input: EnvironmentInput, checks: Check[]) {
  const sizes = (await c.query(sqlFile('rehearsal/table_sizes'), [input.schema, input.tables])).rows;
  for (const s of sizes.filter((x) => !x.exists)) checks.push(bad('tables', `${input.schema}.${s.table} does not exist on this target`));
  const needed = sizes.reduce((a, s) => a + Number(s.total) + (input.backup === 'table' ? Number(s.heap) : 0), 0);
  const db = await one(c, 'database_size');
  const measured = `database ${mb(Number(db.size))}, tables ${sizes.map((s) => `${s.table} ${mb(Number(s.total))}`).join(', ')}; the copy needs ${mb(needed)} (partitioned tables with indexes${input.backup === 'table' ? ' + backup heaps' : ''}) plus WAL up to max_wal_size ${mb(Number(db.max_wal))}`;
  const { free, how } = await freeSpace(c, db.dir);
  if (free === null) checks.push(warn('disk', `${measured}; free space not measured: ${how}. Check df on the server's data directory`));
  else if (free < needed) checks.push(bad('disk', `${measured}; only ${mb(free)} free (${how})`));
  else if (free < needed + Number(db.max_wal)) checks.push(warn('disk', `${measured}; ${mb(free)} free (${how}): tight once WAL is counted`));
  else checks.push(ok('disk', `${measured}; ${mb(free)} free (${how})`));
  return { needed, free, databaseBytes: Number(db.size) };
}

async function longTransactionCheck(c: pg.ClientBase, checks: Check[]) {
  const long = (await c.query(sqlFile('rehearsal/long_transactions'))).rows;
  checks.push(
    long.length
      ? warn(
          'long transactions',
          `${long.map((l) => `pid ${l.pid} (${l.usename}/${l.application_name}, ${l.state}) open ${l.seconds} s`).join('; ')}: they would hold up the cutover's lock`,
        )
      : ok('long transactions', 'none open longer than 60 s'),
  );
  return long;
}

async function timeoutCheck(c: pg.ClientBase, checks: Check[]): Promise<void> {
  const t = await one(c, 'timeouts');
  const timeouts = `lock_timeout ${t.lock}, statement_timeout ${t.stmt}, idle_in_transaction_session_timeout ${t.idle} (the worker's role; the cutover sets its own lock_timeout)`;
  checks.push(
    t.stmt !== '0'
      ? warn('timeouts', `${timeouts}: verification and backup statements longer than ${t.stmt} would be cancelled; see the forecast`)
      : ok('timeouts', timeouts),
  );
}

async function permissionCheck(c: pg.ClientBase, input: EnvironmentInput, checks: Check[]): Promise<void> {
  const perm = (await c.query(sqlFile('rehearsal/table_permissions'), [input.schema, input.tables])).rows;
  const role = await one(c, 'role_privileges', [input.schema]);
  const missing = [
    ...(role.schema_create ? [] : [`CREATE on schema ${input.schema}`]),
    ...(role.db_create ? [] : ['CREATE on the database (for the partition_switchover schema)']),
    ...perm.filter((p) => p.exists && !p.owner).map((p) => `ownership of ${p.table} (renames and triggers)`),
    ...perm.filter((p) => p.exists && !p.dml).map((p) => `SELECT/INSERT/UPDATE/DELETE on ${p.table}`),
  ];
  checks.push(
    missing.length
      ? bad('permissions', `role ${role.role} lacks ${missing.join('; ')}`)
      : ok('permissions', `role ${role.role} owns every table and may create in ${input.schema}`),
  );
}

/** Phase 1: server version, extensions, disk, long transactions, timeouts, permissions. Read only. */
export async function rehearsalEnvironment({ pools }: Deps, input: EnvironmentInput): Promise<PhaseOutcome> {
  return stage('environment', undefined, () =>
    withClient(pools.get(input.database), async (c) => {
      const checks: Check[] = [];
      const v = await versionCheck(c, checks);
      const ext = (await c.query(sqlFile('rehearsal/extensions'))).rows.map((r) => r.e as string);
      checks.push(ok('extensions', ext.join(', ') || 'none'));
      const { needed, free, databaseBytes } = await diskCheck(c, input, checks);
      const long = await longTransactionCheck(c, checks);
      await timeoutCheck(c, checks);
      await permissionCheck(c, input, checks);
      const failed = checks.filter((x) => x.status === 'fail').length;
      return {
        summary: `PostgreSQL ${v.version}; needs ${mb(needed)}${free === null ? ', free disk not measured' : `, ${mb(free)} free`}; ${failed ? `${failed} check(s) failed` : 'ready'}`,
        checks,
        details: { serverVersion: v.version, extensions: ext, neededBytes: needed, freeBytes: free, databaseBytes, longTransactions: long },
      };
    }),
  );
}
