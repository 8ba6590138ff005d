// Preflight's reading of what a table carries beyond columns and indexes: identity columns,
// dependent views, row-level security and the application's triggers. Returns the plan's parts
// (rendered by src/carrysql.ts) and what cannot be carried.
import type pg from 'pg';
import { sqlFile } from '../src/db';
import { identityOptions, legacySequenceName, policySql, viewSql } from '../src/carrysql';
import { ourTriggers } from '../src/ourtriggers';
import type { PublicationPlan, TableNames, TablePlan } from '../src/types';
import { ident, qname } from '../src/sql';
import { readMatviews } from './matviews';

type Carried = Required<Pick<TablePlan, 'identities' | 'views' | 'matviews' | 'policies' | 'rowSecurity' | 'triggers' | 'publications'>>;

/**
 * Runs `fn` with search_path = pg_catalog, so pg_get_viewdef, pg_get_expr and pg_get_triggerdef
 * qualify every name with its schema: the text then means the same in the cutover's session.
 */
async function qualified<T>(db: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  const saved = (await db.query(sqlFile('session/search_path'))).rows[0].p as string;
  await db.query(sqlFile('session/set_search_path'), ['pg_catalog']);
  try {
    return await fn();
  } finally {
    await db.query(sqlFile('session/set_search_path'), [saved]);
  }
}

/**
 * The publications that publish the table. Named ones (FOR TABLE) are carried: the partitioned
 * table takes the table's place, with its column list and row filter. Refused: a named one with
 * publish_via_partition_root = false (the partitioned table's changes would go out under its
 * partitions' names, tables no subscriber has), and FOR ALL TABLES / FOR TABLES IN SCHEMA ones
 * that cover the tables the switchover makes.
 */
async function readPublications(
  db: pg.ClientBase,
  oid: number,
  t: string,
  tq: string,
  names: TableNames,
  partitionKey: string,
  problems: string[],
): Promise<PublicationPlan[]> {
  const rows = (await db.query(sqlFile('catalog/publications'), [oid])).rows;
  // The partitioned table's replica identity is its primary key, which gains the partition key:
  // a column list that leaves the key out no longer covers it, and PostgreSQL then refuses every
  // UPDATE and DELETE of a published table.
  for (const r of rows.filter((x) => x.how === 'table' && x.columns && x.changes_rows && !x.columns.includes(partitionKey))) {
    problems.push(
      `publication ${r.name} publishes ${t} with the column list (${r.columns.join(', ')}), which leaves out the partition key ${partitionKey}: ` +
        `after the switchover the replica identity is the partitioned table's primary key, which includes ${partitionKey}, and PostgreSQL refuses every UPDATE and DELETE ` +
        `of a table whose published column list does not cover its replica identity. Add ${partitionKey} to the column list ` +
        `(ALTER PUBLICATION ${ident(r.name)} DROP TABLE ${tq}, then ALTER PUBLICATION ${ident(r.name)} ADD TABLE ${tq} (${[...r.columns, partitionKey].map(ident).join(', ')})${r.row_filter ? ` WHERE (${r.row_filter})` : ''}; the subscribers' tables need the column), then start again`,
    );
  }
  for (const r of rows.filter((x) => x.how === 'table' && !x.via_root)) {
    problems.push(
      `publication ${r.name} publishes ${t} with publish_via_partition_root = false: after the switchover the changes of the partitioned ` +
        `table would be published under its partitions' names (tables no subscriber has), ` +
        `so its subscribers would stop. Run ALTER PUBLICATION ${ident(r.name)} SET (publish_via_partition_root = true) ` +
        `(it changes nothing for a plain table; a partitioned table already in ${r.name} is then published under its own name ` +
        `instead of its partitions'), then start again`,
    );
  }
  for (const r of rows.filter((x) => x.how !== 'table')) {
    problems.push(
      `publication ${r.name} is FOR ${r.how === 'all' ? 'ALL TABLES' : 'TABLES IN SCHEMA'}: it would also publish the tables the switchover ` +
        `makes (${names.partitioned} and its partitions, ${names.legacy}, the backup, the change log in schema partition_switchover), ` +
        `and a subscriber stops at the first change of a table it does not have (logical replication target relation ... does not exist). ` +
        `Publish the tables by name (CREATE PUBLICATION ... FOR TABLE ...) instead, or switch over where no such publication exists, then start again`,
    );
  }
  return rows.filter((x) => x.how === 'table').map((r) => ({ name: r.name, columns: r.columns ?? null, rowFilter: r.row_filter ?? null }));
}

export async function readCarried(
  db: pg.ClientBase,
  oid: number,
  schema: string,
  table: string,
  names: TableNames,
  partitionKey: string,
): Promise<{ carried: Carried; problems: string[]; lines: string[] }> {
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
    // Materialized views: built again over the partitioned table and swapped in (activities/matviews.ts).
    const mv = await readMatviews(db, oid, t, names);
    problems.push(...mv.problems);
    const views = viewRows.filter((x) => x.relkind === 'v').map((v) => ({ name: `${v.schema}.${v.name}`, createSql: viewSql(v) }));

    const rls = (await db.query(sqlFile('catalog/policies'), [oid])).rows[0];
    const policies = (rls.policies as Parameters<typeof policySql>[2][]).map((p) => policySql(schema, names.partitioned, p));

    const triggerRows = (await db.query(sqlFile('catalog/triggers'), [oid, ourTriggers(names)])).rows;
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
    const publications = await readPublications(db, oid, t, qname(schema, table), names, partitionKey, problems);
    const identity = (await db.query(sqlFile('catalog/replica_identity'), [oid])).rows[0].r as string;
    if (identity !== 'd') {
      const shown: Record<string, string> = { f: 'FULL', i: 'USING INDEX', n: 'NOTHING' };
      problems.push(
        `${t} has REPLICA IDENTITY ${shown[identity] ?? identity}, which the switchover does not carry: the partitioned table and its partitions would have the default ` +
          `(their primary key), which changes what logical decoding sends for each UPDATE and DELETE (and a publication's row filter on other columns would then refuse them). ` +
          `Run ALTER TABLE ${qname(schema, table)} REPLICA IDENTITY DEFAULT first if its consumers accept that (after cutover set it again on the table and each partition), or keep this table plain`,
      );
    }
    for (const r of (await db.query(sqlFile('catalog/subscriptions'), [oid])).rows) {
      problems.push(
        `${t} is a target of subscription ${r.name} (${r.enabled ? 'enabled' : 'disabled'}): its apply worker writes to the table it ` +
          `subscribed (by oid), which after cutover is ${names.legacy}, so every row it applies from then on would be missing ` +
          `from the table the application reads. Switch the table over ` +
          `on the publisher instead, or take it out of the subscription first (on the publisher: ALTER PUBLICATION ... DROP TABLE ${t}; ` +
          `here: ALTER SUBSCRIPTION ${ident(r.name)} REFRESH PUBLICATION), then start again`,
      );
    }
    return {
      carried: { identities, views, matviews: mv.matviews, policies, rowSecurity: { enabled: rls.enabled, forced: rls.forced }, triggers, publications },
      problems,
      lines: mv.lines,
    };
  });
}
