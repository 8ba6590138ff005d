// The fleet's own activities (workflows/fleet.ts): the targets, listed once and recorded in the
// history, each with its server's identity; and the canary's soak check. Read only.
import type pg from 'pg';
import { sqlFile, withClient, withTx } from '../src/db';
import { qname } from '../src/sql';
import type { TablePlan } from '../src/types';
import { fail } from '../src/errors';
import type { FleetTarget } from '../src/rollout';
import { loadPlans } from './bookkeeping';
import { bindDeps, checksum, stage, type Deps } from './context';

/** The server's system_identifier, or its address when the worker's role may not read it. */
async function serverId(c: pg.ClientBase): Promise<string> {
  try {
    return (await c.query(sqlFile('fleet/system_identifier'))).rows[0].id;
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    return `address ${(await c.query(sqlFile('fleet/server_address'))).rows[0].id}`;
  }
}

const PLAIN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * The fleet's databases: the named targets, or the databases of `server` whose name matches
 * `like` (by name; a name that is not a plain identifier is refused, naming it). Each with its
 * server's identity, so switchovers on one server can be counted (perServer).
 */
async function fleetTargets({ pools }: Deps, targets: { databases: string[] } | { server: string; like: string }): Promise<FleetTarget[]> {
  return stage('fleet targets', undefined, async () => {
    if ('databases' in targets) {
      const out: FleetTarget[] = [];
      for (const name of targets.databases) out.push({ name, database: name, server: await withClient(pools.get(name), serverId) });
      return out;
    }
    const { server, like } = targets;
    return withClient(pools.get(server), async (c) => {
      const names: string[] = (await c.query(sqlFile('fleet/databases_like'), [like])).rows.map((r) => r.name);
      if (!names.length)
        throw fail(
          'InvalidInput',
          `no database of target "${server}" matches LIKE '${like}'; nothing was started. Check the pattern (psql -l lists the databases).`,
        );
      const odd = names.filter((n) => !PLAIN.test(n));
      if (odd.length) {
        throw fail(
          'InvalidInput',
          `databases matching LIKE '${like}' whose names are not plain identifiers: ${odd.join(', ')}; narrow the pattern or list the databases. Nothing was started.`,
        );
      }
      const id = await serverId(c);
      return names.map((n) => ({ name: n, database: `${server}/${n}`, server: id }));
    });
  });
}

/** One table after the soak: rows equal to `<table>_legacy` and the mirror trigger that keeps it current enabled. */
export interface SoakTable {
  table: string;
  ok: boolean;
  detail: string;
}

async function soakTable(c: pg.ClientBase, tp: TablePlan): Promise<SoakTable> {
  if (tp.attach) return { table: tp.table, ok: true, detail: 'attach strategy: no legacy copy to compare' };
  const [now, legacy] = [await checksum(c, tp, tp.table), await checksum(c, tp, tp.names.legacy)];
  const trig = (await c.query(sqlFile('catalog/trigger_enabled'), [qname(tp.schema, tp.table), tp.names.mirrorTrigger])).rows[0];
  const same = now.rows === legacy.rows && now.rowHash === legacy.rowHash;
  const mirrored = trig?.enabled === 'O' || trig?.enabled === 'A';
  return {
    table: tp.table,
    ok: same && mirrored,
    detail:
      `${now.rows} rows, ${same ? 'equal to' : `NOT equal to ${legacy.rows} rows of`} ${tp.names.legacy}; ` +
      `mirror trigger ${tp.names.mirrorTrigger} ${mirrored ? 'enabled' : trig ? `disabled (${trig.enabled})` : 'missing'}`,
  };
}

/**
 * The canary after its soak: for each table its switchover cut over (copy strategy), in one
 * snapshot, rows and row hash of the table equal to `<table>_legacy`, and the mirror trigger
 * enabled (writes still land in both). The attach strategy keeps no legacy copy: nothing to compare.
 */
async function fleetSoakCheck(deps: Deps, database: string, schema: string, switchoverWorkflowId: string): Promise<SoakTable[]> {
  const plans = await loadPlans(deps, database, schema, { workflowId: switchoverWorkflowId });
  return stage('fleet soak check', undefined, () =>
    withTx(
      deps.pools.get(database),
      async (c) => {
        const out: SoakTable[] = [];
        for (const tp of plans) out.push(await soakTable(c, tp));
        return out;
      },
      sqlFile('session/begin_repeatable_read'),
    ),
  );
}

export const fleetActivities = (deps: Deps) => bindDeps(deps, { fleetTargets, fleetSoakCheck });
