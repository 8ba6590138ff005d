// Preflight's reading of what a table carries beyond columns and indexes: identity columns,
// dependent views, row-level security and the application's triggers. Returns the plan's parts
// (rendered by src/carry.ts) and what cannot be carried.
import type pg from 'pg';
import { sqlFile } from '../src/db';
import { identityOptions, legacySequenceName, policySql, viewSql } from '../src/carry';
import type { TableNames, TablePlan } from '../src/types';

type Carried = Required<Pick<TablePlan, 'identities' | 'views' | 'policies' | 'rowSecurity' | 'triggers'>>;

/**
 * Runs `fn` with search_path = pg_catalog, so pg_get_viewdef, pg_get_expr and pg_get_triggerdef
 * qualify every name with its schema: the text then means the same in the cutover's session.
 */
async function qualified<T>(db: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  const saved = (await db.query(`select current_setting('search_path') as p`)).rows[0].p as string;
  await db.query(`select set_config('search_path', 'pg_catalog', false)`);
  try {
    return await fn();
  } finally {
    await db.query(`select set_config('search_path', $1::text, false)`, [saved]);
  }
}

export async function readCarried(
  db: pg.ClientBase,
  oid: number,
  schema: string,
  table: string,
  names: TableNames,
): Promise<{ carried: Carried; problems: string[] }> {
  const t = `${schema}.${table}`;
  return qualified(db, async () => {
    const problems: string[] = [];
    const identities = (await db.query(sqlFile('catalog/identities'), [oid])).rows.map((r) => ({
      column: r.column as string,
      kind: r.kind as 'a' | 'd',
      sequence: r.sequence as string,
      legacySequence: legacySequenceName(r.sequence),
      options: identityOptions(r),
    }));

    const viewRows = (await db.query(sqlFile('catalog/views'), [oid])).rows;
    for (const v of viewRows.filter((x) => x.relkind === 'm')) {
      problems.push(
        `materialized view ${v.schema}.${v.name} reads ${t}; it would keep reading ${names.legacy} and block its cleanup. ` +
          `Drop it before the switchover and re-create it afterwards`,
      );
    }
    const views = viewRows.filter((x) => x.relkind === 'v').map((v) => ({ name: `${v.schema}.${v.name}`, createSql: viewSql(v) }));

    const rls = (await db.query(sqlFile('catalog/policies'), [oid])).rows[0];
    const policies = (rls.policies as Parameters<typeof policySql>[2][]).map((p) => policySql(schema, names.partitioned, p));

    const ours = [names.syncTrigger, names.mirrorTrigger];
    const triggerRows = (await db.query(sqlFile('catalog/triggers'), [oid, ours])).rows;
    for (const r of triggerRows.filter((x) => x.row_transition)) {
      problems.push(
        `trigger ${r.name} on ${t} is a row trigger with a transition table (REFERENCING OLD/NEW TABLE), which PostgreSQL does not ` +
          `allow on a partitioned table, so the cutover could not carry it. Make it a FOR EACH STATEMENT trigger (those may have transition tables), ` +
          `or drop it before the switchover`,
      );
    }
    const triggers = triggerRows.map((r) => ({
      name: r.name as string,
      createSql: r.definition as string,
      enabled: r.enabled as string,
    }));
    return {
      carried: { identities, views, policies, rowSecurity: { enabled: rls.enabled, forced: rls.forced }, triggers },
      problems,
    };
  });
}
