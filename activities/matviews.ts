// Preflight's part of carrying the materialized views that read a table: each read (definition,
// owner, indexes, grants, comment, tablespace, populated) and planned as ours over
// `<table>_partitioned`, or refused, naming why and the statements to run. What happens to them
// from the build to cleanup is activities/matview-swap.ts.
import type pg from 'pg';
import { sqlFile } from '../src/db';
import {
  dropMatviewSql,
  MATVIEW_CHEAP_ROWS,
  matviewAccessSql,
  matviewCreateSql,
  matviewIndexSql,
  matviewNames,
  probeSql,
  recreateMatviewSql,
  retargetDefinition,
} from '../src/matviewsql';
import { ident, qname } from '../src/sql';
import { viewSql } from '../src/carrysql';
import type { MatviewPlan, TableNames, TablePlan } from '../src/types';

type Row = { schema: string; name: string } & Record<string, any>;

const shown = (m: { schema: string; name: string }) => `${m.schema}.${m.name}`;

/** Why a materialized view cannot be carried (null: it can): something other than a view reads it, or its owner is out of the worker's reach. */
async function refusal(db: pg.ClientBase, v: Row, t: string): Promise<string | null> {
  const q = qname(v.schema, v.name);
  const deps = (await db.query(sqlFile('catalog/matview_dependents'), [q])).rows.filter((d) => d.kind !== 'view');
  if (deps.length) {
    return (
      `materialized view ${shown(v)} reads ${t}, and ${deps.map((d) => `${d.kind} ${d.name}`).join(', ')} ${deps.length === 1 ? 'reads' : 'read'} it: ` +
      `at cutover ${shown(v)} is replaced by one built over the partitioned table, and ${deps.length === 1 ? 'that' : 'those'} would keep reading the old one ` +
      `(${v.schema}.${matviewNames(v.name).legacyName} then), which cleanup drops. Run ${deps.map((d) => `${d.drop_sql};`).join(' ')} ` +
      `before the switchover and make ${deps.length === 1 ? 'it' : 'them'} again after it, then start again`
    );
  }
  if (!v.worker_is_member) {
    return (
      `materialized view ${shown(v)} reads ${t} and is owned by role ${v.owner}, and the worker's role ${v.worker} is neither superuser nor a member of it, ` +
      `so it cannot build the new one as ${v.owner}; run GRANT ${ident(v.owner)} TO ${ident(v.worker)} and start again`
    );
  }
  if (!v.owner_can_create) {
    return (
      `materialized view ${shown(v)} reads ${t} and is owned by role ${v.owner}, which has no CREATE privilege on schema ${v.schema}, so the new one cannot be built as it; ` +
      `run GRANT CREATE ON SCHEMA ${ident(v.schema)} TO ${ident(v.owner)} and start again`
    );
  }
  return null;
}

/**
 * Whether the definition, re-aimed (at the table itself here), gives the view's columns: a
 * query that returns no row, so it costs its planning only. Null when it does, else why not.
 */
async function probe(db: pg.ClientBase, v: Row): Promise<string | null> {
  const columns = (await db.query(sqlFile('catalog/matview_columns'), [qname(v.schema, v.name)])).rows;
  try {
    const r = await db.query(probeSql(retargetDefinition(v.definition, v.printed, v.printed, v.alias)));
    const same =
      r.fields.length === columns.length &&
      r.fields.every((f, i) => f.name === columns[i].name && f.dataTypeID === Number(columns[i].type_oid) && f.dataTypeModifier === columns[i].typmod);
    return same ? null : 'its columns came out different';
  } catch (err) {
    return (err as Error).message;
  }
}

/** One materialized view's plan: ours, its indexes, grants and comment, and when it is refreshed. */
async function planOf(db: pg.ClientBase, v: Row): Promise<MatviewPlan> {
  const { newName, legacyName } = matviewNames(v.name);
  const definition = retargetDefinition(v.definition, v.printed, v.retarget, v.alias);
  const indexes = (await db.query(sqlFile('catalog/matview_indexes'), [v.oid])).rows.map((i) => {
    const n = matviewNames(i.name);
    const createSql = matviewIndexSql(v.schema, newName, { newName: n.newName, unique: i.is_unique, usingClause: i.using_clause });
    return { name: i.name as string, newName: n.newName, legacyName: n.legacyName, createSql, tablespace: (i.tablespace as string) ?? null };
  });
  const rowsRead = Number(v.rows_read);
  return {
    schema: v.schema,
    name: v.name,
    newName,
    legacyName,
    owner: v.owner,
    createSql: matviewCreateSql({ schema: v.schema, newName, options: v.options, tablespace: v.tablespace, definition, populated: v.populated }),
    populated: v.populated,
    indexes,
    accessSql: matviewAccessSql({ schema: v.schema, newName, acl: v.acl, comment: v.comment }),
    views: (await db.query(sqlFile('catalog/views'), [v.oid])).rows
      .filter((x) => x.relkind === 'v')
      .map((x) => ({ name: `${x.schema}.${x.name}`, createSql: viewSql(x) })),
    rowsRead,
    refreshAtCutover: v.populated && rowsRead <= MATVIEW_CHEAP_ROWS,
  };
}

/**
 * Preflight (with search_path = pg_catalog, activities/carried.ts): the materialized views that
 * read the table, each planned or refused with the reason and the statements to run.
 */
export async function readMatviews(
  db: pg.ClientBase,
  oid: number,
  t: string,
  names: TableNames,
): Promise<{ matviews: MatviewPlan[]; problems: string[]; lines: string[] }> {
  const rows = (await db.query(sqlFile('catalog/matviews'), [oid, names.partitioned])).rows;
  const matviews: MatviewPlan[] = [];
  const problems: string[] = [];
  for (const v of rows) {
    const refused = await refusal(db, v, t);
    if (refused) {
      problems.push(refused);
      continue;
    }
    const why = await probe(db, v);
    if (why) {
      problems.push(
        `materialized view ${shown(v)} reads ${t} in a way the switchover cannot build again over ${names.partitioned} (${why}). ` +
          `Run ${dropMatviewSql(v.schema, v.name)}; before the switchover and ${recreateMatviewSql(v.schema, v.name, v.definition)}; after it, then start again`,
      );
      continue;
    }
    matviews.push(await planOf(db, v));
  }
  return { matviews, problems, lines: matviews.map((m) => planLine(m, t, names)) };
}

function planLine(m: MatviewPlan, t: string, names: TableNames): string {
  const when = !m.populated
    ? 'not populated (WITH NO DATA), so it is built without data and never refreshed'
    : m.refreshAtCutover
      ? `refreshed while approval waits and again right before the cutover's lock (about ${m.rowsRead} rows read, at most ${MATVIEW_CHEAP_ROWS})`
      : `refreshed while approval waits, not right before the cutover (about ${m.rowsRead} rows read, over ${MATVIEW_CHEAP_ROWS}): after cutover it holds the rows of its last refresh until the application's next REFRESH`;
  return (
    `materialized view ${shown(m)} reads ${t}: ${m.schema}.${m.newName} is built over ${names.partitioned} after verification, as ${m.owner}, ` +
    `with its ${m.indexes.length} ${m.indexes.length === 1 ? 'index' : 'indexes'}, grants and comment; ${when}. The cutover swaps the names ` +
    `(the old one is ${m.schema}.${m.legacyName} until cleanup drops it); the rollback swaps them back`
  );
}

/** The names ours would take that are taken already (preflight refuses each, as for the table's own names). */
export async function matviewNameConflicts(db: pg.ClientBase, tp: TablePlan): Promise<string[]> {
  const out: string[] = [];
  for (const m of tp.matviews ?? []) {
    const wanted: [string, string][] = [
      [m.newName, `the new materialized view ${m.name} before cutover`],
      [m.legacyName, `materialized view ${m.name} after cutover`],
      ...m.indexes.flatMap((i) => [
        [i.newName, `index ${i.name} of the new materialized view ${m.name}`] as [string, string],
        [i.legacyName, `index ${i.name} of the old materialized view ${m.name}`] as [string, string],
      ]),
    ];
    for (const [name, what] of wanted) {
      if (!(await db.query(sqlFile('catalog/relation_exists'), [qname(m.schema, name)])).rows[0].ok) continue;
      out.push(
        `${m.schema}.${name} already exists; the switchover of ${tp.schema}.${tp.table} would create it as ${what}. ` +
          `Rename or drop it (if it is left from an earlier switchover, run the rollback workflow for that one), then start again`,
      );
    }
  }
  return out;
}

/** A materialized view that reads two of the tables a switchover moves: each cutover would build it over the other's old table. */
export function matviewsInSeveral(tables: TablePlan[]): string[] {
  const seen = new Map<string, string>();
  const out: string[] = [];
  for (const tp of tables) {
    for (const m of tp.matviews ?? []) {
      const other = seen.get(shown(m));
      if (other) {
        out.push(
          `materialized view ${shown(m)} reads both ${other} and ${tp.schema}.${tp.table}, which this switchover both moves: each cutover would build it ` +
            `again over the other's table as it stands before its own cutover. Switch them over in separate switchovers (one after the other's cleanup), then start again`,
        );
      }
      seen.set(shown(m), `${tp.schema}.${tp.table}`);
    }
  }
  return out;
}

/** The attach strategy keeps the table as a partition: a materialized view on it would go on reading only the rows before the cutoff. */
export function matviewsRefusedForAttach(tp: TablePlan): string[] {
  return (tp.matviews ?? []).map(
    (m) =>
      `materialized view ${shown(m)} reads ${tp.schema}.${tp.table}, and the attach strategy does not carry materialized views ` +
      `(the table becomes its history partition, so ${shown(m)} would go on reading only the rows before the cutoff). Use "strategy": "copy", which carries it, ` +
      `or run ${dropMatviewSql(m.schema, m.name)}; before the switchover and make it again after it, then start again`,
  );
}
