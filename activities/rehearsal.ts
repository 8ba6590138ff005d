// The rehearsal's own activities: which target it may touch, the environment checks, the
// trigger behaviour test, sizes, the tables' truth before and after the rollback, and the final
// "nothing of ours left" check. The switchover's own stages are reused as they are.
import { statfs } from 'node:fs/promises';
import type pg from 'pg';
import { trialTx, withClient, withTx } from '../src/db';
import { fail } from '../src/errors';
import { bad, ok, warn, type Check, type PhaseOutcome, type TableSizes } from '../src/rehearsal';
import * as sql from '../src/sqlgen';
import { isPeriod } from '../src/partitions';
import type { Checksum, TablePlan } from '../src/types';
import { checksum, Deps, stage } from './context';
import { tableState } from './state';
import { cloneInsertSql, keyLiteral, markedWhere, markerBase, sampleRow, touchColumn } from './marked';
import { relations } from './state';
import { budgetFor, deadlockTimeoutMs } from './locks';
import { smokeActivities } from './smoke';
import { writerActivities } from './writer';

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
  const r = (
    await c.query(
      `select (select system_identifier::text from pg_control_system()) as system,
              (select oid::text from pg_database where datname = current_database()) as database_oid,
              current_database() as database,
              coalesce(inet_server_addr() <<= '127.0.0.0/8'::inet or inet_server_addr() = '::1'::inet, true) as local`,
    )
  ).rows[0];
  return { system: r.system, databaseOid: r.database_oid, database: r.database, local: r.local };
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

/** hash of every marked row, by key, on one side. */
async function markedRows(c: pg.ClientBase, tp: TablePlan, table: string): Promise<{ key: string; hash: string; part: string }[]> {
  const key = tp.primaryKey.map((k) => `${sql.ident(k)}::text`).join(` || ',' || `);
  const r = await c.query(
    `SELECT ${key} AS key, ${sql.rowHashExpr(tp)}::text AS hash, tableoid::regclass::text AS part FROM ${sql.qname(tp.schema, table)} ` +
      `WHERE ${markedWhere(tp)} ORDER BY 1`,
  );
  return r.rows;
}

export function rehearsalActivities(deps: Deps) {
  const { pools } = deps;
  return {
    ...smokeActivities(deps),
    ...writerActivities(deps),

    /**
     * Refuses a target that is `default` or the same database as `default`, comparing what both
     * servers say they are (system identifier and database oid), and refuses when it cannot tell.
     */
    async rehearsalTarget(database: string, forecastDatabase?: string): Promise<{ server: string }> {
      if (forecastDatabase) pools.get(forecastDatabase); // an unknown forecast target fails now, not at sign-off
      if (database === 'default') {
        throw fail('InvalidInput', 'a rehearsal runs on a staging target, never on "default"; nothing was changed');
      }
      const staging = pools.get(database);
      return stage('environment', undefined, async () => {
        const identify = async (name: string, pool: pg.Pool) => {
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
        };
        const mine = await identify(database, staging);
        if (pools.names().includes('default')) {
          const production = await identify('default', pools.get('default'));
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
    },

    /** Phase 1: server version, extensions, disk, long transactions, timeouts, permissions. Read only. */
    async rehearsalEnvironment(input: { database: string; schema: string; tables: string[]; backup: 'table' | 'none' }): Promise<PhaseOutcome> {
      return stage('environment', undefined, () =>
        withClient(pools.get(input.database), async (c) => {
          const checks: Check[] = [];
          const one = async (text: string, values: unknown[] = []) => (await c.query(text, values)).rows[0];

          const v = await one(`select current_setting('server_version') as version, current_setting('server_version_num')::int as num`);
          checks.push(
            v.num >= 140000
              ? ok('server version', `PostgreSQL ${v.version}`)
              : bad('server version', `PostgreSQL ${v.version}: the switchover needs 14 or later (CREATE OR REPLACE TRIGGER, hash_record_extended)`),
          );
          const ext = (await c.query(`select extname || ' ' || extversion as e from pg_extension order by extname`)).rows.map((r) => r.e as string);
          checks.push(ok('extensions', ext.join(', ') || 'none'));

          // Space the switchover needs: the partitioned copy (heap and indexes), and the backup heap.
          const sizes = (
            await c.query(
              `select t as table, to_regclass(format('%I.%I', $1::text, t)) is not null as exists,
                      coalesce(pg_total_relation_size(to_regclass(format('%I.%I', $1::text, t))), 0)::bigint as total,
                      coalesce(pg_table_size(to_regclass(format('%I.%I', $1::text, t))), 0)::bigint as heap
                 from unnest($2::text[]) t`,
              [input.schema, input.tables],
            )
          ).rows;
          for (const s of sizes.filter((x) => !x.exists)) checks.push(bad('tables', `${input.schema}.${s.table} does not exist on this target`));
          const needed = sizes.reduce((a, s) => a + Number(s.total) + (input.backup === 'table' ? Number(s.heap) : 0), 0);
          const db = await one(
            `select pg_database_size(current_database())::bigint as size,
                    (select setting from pg_settings where name = 'data_directory') as dir,
                    pg_size_bytes(current_setting('max_wal_size'))::bigint as max_wal`,
          );
          const measured = `database ${mb(Number(db.size))}, tables ${sizes.map((s) => `${s.table} ${mb(Number(s.total))}`).join(', ')}; the copy needs ${mb(needed)} (partitioned tables with indexes${input.backup === 'table' ? ' + backup heaps' : ''}) plus WAL up to max_wal_size ${mb(Number(db.max_wal))}`;
          let free: number | null = null;
          let how = '';
          if (!db.dir) how = 'data_directory is hidden from this role (needs pg_read_all_settings)';
          else if (!(await targetIdentity(c)).local) how = 'the server is remote (reached over the network); SQL offers no free-space function';
          else {
            try {
              const fs = await statfs(db.dir);
              free = Number(fs.bavail) * Number(fs.bsize);
              how = `statfs(${db.dir}) on the worker host, which is the database host`;
            } catch (err) {
              how = `statfs(${db.dir}) failed on the worker host (${(err as Error).message})`;
            }
          }
          if (free === null) checks.push(warn('disk', `${measured}; free space not measured: ${how}. Check df on the server's data directory`));
          else if (free < needed) checks.push(bad('disk', `${measured}; only ${mb(free)} free (${how})`));
          else if (free < needed + Number(db.max_wal)) checks.push(warn('disk', `${measured}; ${mb(free)} free (${how}): tight once WAL is counted`));
          else checks.push(ok('disk', `${measured}; ${mb(free)} free (${how})`));

          const long = (
            await c.query(
              `select pid, usename, application_name, state, extract(epoch from now() - xact_start)::int as seconds
                 from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid() and xact_start < now() - interval '60 seconds'
                order by xact_start limit 5`,
            )
          ).rows;
          checks.push(
            long.length
              ? warn('long transactions', `${long.map((l) => `pid ${l.pid} (${l.usename}/${l.application_name}, ${l.state}) open ${l.seconds} s`).join('; ')}: they would hold up the cutover's lock`)
              : ok('long transactions', 'none open longer than 60 s'),
          );

          const t = await one(
            `select current_setting('lock_timeout') as lock, current_setting('statement_timeout') as stmt,
                    current_setting('idle_in_transaction_session_timeout') as idle`,
          );
          const timeouts = `lock_timeout ${t.lock}, statement_timeout ${t.stmt}, idle_in_transaction_session_timeout ${t.idle} (the worker's role; the cutover sets its own lock_timeout)`;
          checks.push(
            t.stmt !== '0'
              ? warn('timeouts', `${timeouts}: verification and backup statements longer than ${t.stmt} would be cancelled; see the forecast`)
              : ok('timeouts', timeouts),
          );

          const perm = (
            await c.query(
              `select t as table, c.oid is not null as exists,
                      coalesce(pg_has_role(current_user, c.relowner, 'USAGE'), false) as owner,
                      coalesce(has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE'), false) as dml
                 from unnest($2::text[]) t
                 left join pg_class c on c.oid = to_regclass(format('%I.%I', $1::text, t))`,
              [input.schema, input.tables],
            )
          ).rows;
          const role = await one(
            `select current_user as role, has_schema_privilege($1::text, 'CREATE') as schema_create,
                    has_database_privilege(current_database(), 'CREATE') or to_regnamespace('partition_switchover') is not null as db_create`,
            [input.schema],
          );
          const missing = [
            ...(role.schema_create ? [] : [`CREATE on schema ${input.schema}`]),
            ...(role.db_create ? [] : ['CREATE on the database (for the partition_switchover schema)']),
            ...perm.filter((p) => p.exists && !p.owner).map((p) => `ownership of ${p.table} (renames and triggers)`),
            ...perm.filter((p) => p.exists && !p.dml).map((p) => `SELECT/INSERT/UPDATE/DELETE on ${p.table}`),
          ];
          checks.push(missing.length ? bad('permissions', `role ${role.role} lacks ${missing.join('; ')}`) : ok('permissions', `role ${role.role} owns every table and may create in ${input.schema}`));

          const failed = checks.filter((x) => x.status === 'fail').length;
          return {
            summary: `PostgreSQL ${v.version}; needs ${mb(needed)}${free === null ? ', free disk not measured' : `, ${mb(free)} free`}; ${failed ? `${failed} check(s) failed` : 'ready'}`,
            checks,
            details: { serverVersion: v.version, extensions: ext, neededBytes: needed, freeBytes: free, databaseBytes: Number(db.size), longTransactions: long },
          };
        }),
      );
    },

    /** Phase 2's check: the partitioned table is as the plan says (partitions, key, indexes). */
    async rehearsalPrepareCheck(database: string, tp: TablePlan): Promise<Check[]> {
      return stage('prepare', tp.table, () =>
        withClient(pools.get(database), async (c) => {
          const r = (
            await c.query(
              `select c.relkind::text as kind,
                      (select count(*) from pg_inherits i where i.inhparent = c.oid)::int as partitions,
                      (select count(*) from pg_index x where x.indrelid = c.oid)::int as indexes,
                      (select array_agg(a.attname::text order by k.ord) from pg_constraint p
                         cross join unnest(p.conkey) with ordinality k(attnum, ord)
                         join pg_attribute a on a.attrelid = p.conrelid and a.attnum = k.attnum
                        where p.conrelid = c.oid and p.contype = 'p') as pk
                 from pg_class c where c.oid = to_regclass($1::text)`,
              [sql.qname(tp.schema, tp.names.partitioned)],
            )
          ).rows[0];
          if (!r) return [bad(tp.table, `${tp.names.partitioned} was not created`)];
          const wanted = tp.partitions.length + (tp.defaultPartition ? 1 : 0);
          const checks = [
            r.kind === 'p' && r.partitions === wanted
              ? ok(`${tp.table} partitions`, `${tp.names.partitioned}: ${r.partitions} ${tp.interval} partitions ${tp.partitions[0].from}..${tp.partitions[tp.partitions.length - 1].to}`)
              : bad(`${tp.table} partitions`, `${tp.names.partitioned} is relkind ${r.kind} with ${r.partitions} partitions; the plan has ${wanted}`),
            JSON.stringify(r.pk) === JSON.stringify(tp.partitionedKey)
              ? ok(`${tp.table} primary key`, `(${tp.partitionedKey.join(', ')})`)
              : bad(`${tp.table} primary key`, `(${(r.pk ?? []).join(', ')}), the plan has (${tp.partitionedKey.join(', ')})`),
            // Secondary indexes are built after the copy, so only the count so far is reported here.
            ok(`${tp.table} indexes`, `${r.indexes} of the plan's ${tp.indexes.length} indexes exist before the copy`),
          ];
          return checks;
        }),
      );
    },

    /**
     * Phase 3: insert, update, key-moving update, upsert (both paths) and delete of marked rows
     * through the dual-write trigger, each compared row by row with the partitioned side. One
     * transaction, rolled back: the marked rows never become visible to anyone.
     */
    async rehearsalTriggerTest(database: string, tp: TablePlan): Promise<Check[]> {
      return stage('trigger behaviour', tp.table, () =>
        withClient(pools.get(database), async (c) => {
          const base = markerBase(tp);
          if (base === null) return [warn(tp.table, `no integer key column to mark test rows with (key ${tp.primaryKey.join(', ')}); triggers not exercised`)];
          const touch = touchColumn(tp);
          // The last premade periods (not `pmax`, whose lower bound is the last period's end).
          const periods = tp.partitions.filter(isPeriod);
          const last = periods[periods.length - 1];
          const prev = periods[periods.length - 2];
          const [a, b] = [base - 1, base - 2];
          const t = sql.qname(tp.schema, tp.table);
          const split = sql.ident(tp.splitColumn!);
          const checks: Check[] = [];
          return trialTx(c, async () => {
            // Ours gives way in any lock cycle with the staging application (activities/locks.ts).
            await c.query(`SELECT set_config('lock_timeout', $1::text, true)`, [`${budgetFor(5000, await deadlockTimeoutMs(c))}ms`]);
            const sample = await sampleRow(c, tp);
            if (!sample) return [bad(tp.table, `${tp.table} is empty on staging; seed it so the rehearsal has rows to test with`)];
            const compare = async (op: string, sqlText: string, expectRows: number, extra?: (p: { key: string; part: string }[]) => string | null) => {
              const res = await c.query(sqlText);
              const legacy = await markedRows(c, tp, tp.table);
              const partitioned = await markedRows(c, tp, tp.names.partitioned);
              const same = JSON.stringify(legacy.map((r) => [r.key, r.hash])) === JSON.stringify(partitioned.map((r) => [r.key, r.hash]));
              const problem = !same
                ? `legacy has ${legacy.length} marked row(s), partitioned ${partitioned.length}, or their contents differ`
                : legacy.length !== expectRows
                  ? `expected ${expectRows} marked row(s), found ${legacy.length}`
                  : (extra?.(partitioned) ?? null);
              checks.push(problem ? bad(`${tp.table} ${op}`, problem) : ok(`${tp.table} ${op}`, `${res.rowCount} row(s); both sides equal (${legacy.length} marked)`));
            };
            await compare('insert', cloneInsertSql(tp, { sampleKey: sample.key, id: a, day: last.from }), 1);
            if (touch) await compare('update', `UPDATE ${t} SET ${touch.set} WHERE ${split} = ${a}`, 1);
            const prevPart = sql.partitionNameFor(tp, prev);
            await compare('key-moving update', `UPDATE ${t} SET ${sql.ident(tp.partitionKey)} = ${keyLiteral(tp, prev.from)} WHERE ${split} = ${a}`, 1, (p) =>
              p.length === 1 && p[0].part.replace(/^.*\./, '').replace(/"/g, '') === prevPart ? null : `row did not move to ${prevPart} (found in ${p.map((x) => x.part).join(', ')})`,
            );
            await compare('upsert (insert)', cloneInsertSql(tp, { sampleKey: sample.key, id: b, day: last.from, upsert: true }), 2);
            await compare('upsert (update)', cloneInsertSql(tp, { sampleKey: sample.key, id: a, day: prev.from, upsert: true }), 2);
            await compare('delete', `DELETE FROM ${t} WHERE ${split} IN (${a}, ${b})`, 0);
            return checks;
          });
        }),
      );
    },

    /** Sizes and rows of each table after cutover: the partitioned table, `_legacy` and the backup. */
    async measureTables(database: string, plans: TablePlan[]): Promise<TableSizes[]> {
      return stage('measure', undefined, () =>
        withClient(pools.get(database), async (c) => {
          const out: TableSizes[] = [];
          for (const tp of plans) {
            const size = async (name: string) =>
              Number((await c.query(`select coalesce(pg_total_relation_size(to_regclass($1::text)), 0)::bigint as b`, [sql.qname(tp.schema, name)])).rows[0].b);
            const parts = await c.query(
              `select coalesce(sum(pg_total_relation_size(relid)), 0)::bigint as b from pg_partition_tree(to_regclass($1::text))`,
              [sql.qname(tp.schema, tp.table)],
            );
            const rows = await c.query(`select count(*)::bigint as n from ${sql.qname(tp.schema, tp.table)}`);
            out.push({
              table: tp.table,
              rows: Number(rows.rows[0].n),
              partitionedBytes: Number(parts.rows[0].b),
              legacyBytes: await size(tp.names.legacy),
              backupBytes: await size(tp.names.backup),
            });
          }
          return out;
        }),
      );
    },

    /** Each table's checksum by its own name (what the application sees), in one snapshot. */
    async tableTruth(database: string, plans: TablePlan[]): Promise<Record<string, Checksum>> {
      return stage('rollback test', undefined, () =>
        withTx(
          pools.get(database),
          async (c) => {
            const out: Record<string, Checksum> = {};
            for (const tp of plans) out[tp.table] = await checksum(c, tp, tp.table);
            return out;
          },
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        ),
      );
    },

    /**
     * The end state: every table plain and owning its sequences again, nothing of ours left
     * (partitioned copies, legacy and backup tables, triggers, functions, claims), marked rows
     * and copy positions of the given workflows dropped. Audit rows stay. Idempotent.
     */
    async rehearsalLeftovers(database: string, plans: TablePlan[], workflowIds: string[]): Promise<{ checks: Check[]; droppedMarked: number; droppedProgress: number }> {
      return stage('leftovers', undefined, () =>
        withTx(pools.get(database), async (c) => {
          const checks: Check[] = [];
          let droppedMarked = 0;
          for (const tp of plans) {
            const state = await tableState(c, tp);
            const attachNames = tp.attach ? [tp.attach.history, tp.attach.keyIndex, ...tp.attach.partitions.map((p) => p.name)].filter((x): x is string => !!x) : [];
            const left = [...(await relations(c, tp.schema, [tp.names.partitioned, tp.names.legacy, tp.names.backup, ...attachNames])).keys()];
            const fns = (
              await c.query(
                `select p.proname::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1::text and p.proname = any($2::text[])`,
                [tp.schema, [tp.names.syncFunction, tp.names.mirrorFunction, ...(tp.names.guardFunction ? [tp.names.guardFunction] : [])]],
              )
            ).rows.map((r) => r.name);
            const triggers = (
              await c.query(`select tgname::text as name from pg_trigger where tgrelid = to_regclass($1::text) and tgname = any($2::text[])`, [
                sql.qname(tp.schema, tp.table),
                [tp.names.syncTrigger, tp.names.mirrorTrigger, sql.TRUNCATE_GUARD_TRIGGER],
              ])
            ).rows.map((r) => r.name);
            const sequences = [];
            for (const s of tp.sequences) {
              const owner = (await c.query(`select pg_get_serial_sequence($1::text, $2::text) as seq`, [sql.qname(tp.schema, tp.table), s.column])).rows[0].seq;
              if (!owner) sequences.push(`${s.sequence} is not owned by ${tp.table}.${s.column}`);
            }
            const problems = [...left.map((x) => `${x} still exists`), ...fns.map((f) => `function ${f}() still exists`), ...triggers.map((g) => `trigger ${g} still on ${tp.table}`), ...sequences];
            checks.push(state !== 'plain' ? bad(`${tp.table} state`, `${tp.table} is ${state}, not a plain table`) : ok(`${tp.table} state`, 'plain table'));
            checks.push(problems.length ? bad(`${tp.table} leftovers`, problems.join('; ')) : ok(`${tp.table} leftovers`, 'no copy, legacy, backup, trigger or function of ours; sequences owned by the table'));
            if (markerBase(tp) !== null && state !== 'missing') {
              droppedMarked += (await c.query(`DELETE FROM ${sql.qname(tp.schema, tp.table)} WHERE ${markedWhere(tp)}`)).rowCount ?? 0;
            }
          }
          const hasState = (await c.query(`select to_regclass('partition_switchover.claims') is not null as ok`)).rows[0].ok;
          let droppedProgress = 0;
          if (hasState) {
            const claims = (
              await c.query(`select table_name, workflow_id from partition_switchover.claims where schema_name = $1::text and table_name = any($2::text[])`, [
                plans[0]?.schema ?? 'public',
                plans.map((p) => p.table),
              ])
            ).rows;
            checks.push(claims.length ? bad('claims', claims.map((x) => `${x.table_name} held by ${x.workflow_id}`).join('; ')) : ok('claims', 'no table claimed'));
            droppedProgress = (await c.query(`delete from partition_switchover.copy_progress where workflow_id = any($1::text[])`, [workflowIds])).rowCount ?? 0;
          }
          checks.push(droppedMarked ? warn('marked rows', `${droppedMarked} committed test row(s) of ours found and dropped`) : ok('marked rows', 'none of our test rows in the tables'));
          return { checks, droppedMarked, droppedProgress };
        }),
      );
    },

    /** Production row counts for the forecast, read only: the planner's estimate, or count(*) when there is none. */
    async productionRows(database: string, schema: string, tables: string[]): Promise<Record<string, number>> {
      return stage('forecast', undefined, () =>
        withTx(
          pools.get(database),
          async (c) => {
            const out: Record<string, number> = {};
            for (const t of tables) {
              const r = (await c.query(`select reltuples::bigint as n from pg_class where oid = to_regclass($1::text)`, [sql.qname(schema, t)])).rows[0];
              if (!r) continue;
              let n = Number(r.n);
              if (n < 0) n = Number((await c.query(`select count(*)::bigint as n from ${sql.qname(schema, t)}`)).rows[0].n);
              out[t] = n;
            }
            return out;
          },
          'BEGIN READ ONLY',
        ),
      );
    },
  };
}
