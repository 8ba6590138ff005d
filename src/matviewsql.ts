// Materialized views reading a table, as SQL: the definition re-aimed at `<table>_partitioned`,
// the build of ours as the view's owner, the swap of names at cutover (and back at rollback),
// refresh and drop. Pure rendering; activities/matviews.ts reads the catalog and runs these.
import { fitName } from './partitions';
import { grantSql } from './sqlgen';
import { ident, literal, qname } from './sql';
import type { MatviewPlan, TablePlan } from './types';

/** A materialized view reading at most this many rows (planner's estimate) is refreshed again right before the cutover's lock. */
export const MATVIEW_CHEAP_ROWS = 1_000_000;

/** Ours while it is built (until cutover), and the original's name from cutover to cleanup. */
export function matviewNames(name: string): { newName: string; legacyName: string } {
  return { newName: fitName(name, '_ps_new'), legacyName: fitName(name, '_legacy') };
}

/**
 * pg_get_viewdef text (read with search_path = pg_catalog, so the table is printed `printed`,
 * schema-qualified) with every scan of the table aimed at `retarget` instead. A scan printed
 * without an alias gets the table's bare name `alias`, so the columns, printed `<table>.<column>`,
 * still resolve; `ONLY` is dropped (ONLY on a partitioned table reads no row). Keywords are
 * printed upper case and aliases lower case or quoted, which tells an alias from the next clause.
 */
export function retargetDefinition(definition: string, printed: string, retarget: string, alias: string): string {
  const body = definition.trim().replace(/;$/, '');
  const escaped = printed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const scan = new RegExp(`(?<![\\w$".'])(?:ONLY )?${escaped}(?![\\w$"])(\\s*)`, 'g');
  return body.replace(scan, (match: string, space: string, offset: number, whole: string) => {
    const aliased = /^(?:[a-z_\u0080-\uffff]|")/.test(whole.slice(offset + match.length));
    return `${retarget}${aliased ? '' : ` ${alias}`}${space}`;
  });
}

/** A query that returns the definition's columns and no row (preflight checks a re-aimed definition with it). */
export function probeSql(definition: string): string {
  return `SELECT * FROM (${definition}) ps_probe LIMIT 0`;
}

function options(list: string[]): string {
  const out = list.map((o) => {
    const [key, ...rest] = o.split('=');
    if (!/^[a-z_.]+$/.test(key)) throw new Error(`unexpected materialized view option ${o}`);
    return `${key} = ${literal(rest.join('='))}`;
  });
  return out.length ? ` WITH (${out.join(', ')})` : '';
}

/** CREATE MATERIALIZED VIEW of ours, with the original's storage options, tablespace and populated state. */
export function matviewCreateSql(m: {
  schema: string;
  newName: string;
  options: string[];
  tablespace: string | null;
  definition: string;
  populated: boolean;
}): string {
  return (
    `CREATE MATERIALIZED VIEW ${qname(m.schema, m.newName)}${options(m.options)}${m.tablespace ? ` TABLESPACE ${ident(m.tablespace)}` : ''} ` +
    `AS ${m.definition} WITH ${m.populated ? '' : 'NO '}DATA`
  );
}

/** One of the original's indexes on ours: `usingClause` is its definition after `USING ` (src: catalog/matview_indexes). */
export function matviewIndexSql(schema: string, view: string, i: { newName: string; unique: boolean; usingClause: string }): string {
  return `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX ${ident(i.newName)} ON ${qname(schema, view)} USING ${i.usingClause}`;
}

/** The original's grants and comment, on ours. */
export function matviewAccessSql(m: { schema: string; newName: string; acl: string[]; comment: string | null }): string[] {
  // grantSql reads only the schema, the table ACL and the column ACLs of a plan.
  const grants = { schema: m.schema, acl: m.acl, columnAcl: [] } as unknown as TablePlan;
  return [
    ...grantSql(grants, { table: m.newName }),
    ...(m.comment !== null ? [`COMMENT ON MATERIALIZED VIEW ${qname(m.schema, m.newName)} IS ${literal(m.comment)}`] : []),
  ];
}

/** The build of ours in one transaction, as its owner (so the query runs with the owner's rights, as its refresh will). */
export function matviewBuildSql(m: MatviewPlan): string[] {
  return [
    `SET LOCAL ROLE ${ident(m.owner)}`,
    m.createSql,
    ...m.indexes.flatMap((i) => [i.createSql, ...(i.tablespace ? [`ALTER INDEX ${qname(m.schema, i.newName)} SET TABLESPACE ${ident(i.tablespace)}`] : [])]),
    ...m.accessSql,
  ];
}

export function refreshMatviewSql(m: MatviewPlan): string {
  return `REFRESH MATERIALIZED VIEW ${qname(m.schema, m.newName)}`;
}

export function dropMatviewSql(schema: string, name: string): string {
  return `DROP MATERIALIZED VIEW ${qname(schema, name)}`;
}

/** The statement that makes a materialized view again from its pg_get_viewdef text (a refusal names it). */
export function recreateMatviewSql(schema: string, name: string, definition: string): string {
  return `CREATE MATERIALIZED VIEW ${qname(schema, name)} AS ${definition.trim().replace(/;$/, '')}`;
}

/** ACCESS EXCLUSIVE on a materialized view alone (LOCK TABLE refuses one): a no-op owner change to the owner it has. */
export function matviewLockSql(schema: string, name: string, owner: string): string {
  return `ALTER MATERIALIZED VIEW ${qname(schema, name)} OWNER TO ${ident(owner)}`;
}

/** The dry-run's statements of the materialized views carried (none: no entry): build, swap at cutover, the original's drop at cleanup. */
export function matviewPlanSql(tp: TablePlan): Record<string, string[]> {
  const mvs = tp.matviews ?? [];
  if (!mvs.length) return {};
  return {
    matviews: [
      ...mvs.flatMap((m) => [...matviewBuildSql(m), ...(m.refreshAtCutover ? [refreshMatviewSql(m)] : [])]),
      ...mvs.flatMap((m) => [...matviewSwapSql(m, 'cutover'), ...(m.views ?? []).map((v) => v.createSql)]),
      ...mvs.map((m) => dropMatviewSql(m.schema, m.legacyName)),
    ],
  };
}

/**
 * The swap of names, with each index's: at cutover the original steps aside to `legacyName` and
 * ours takes its name; at rollback ours goes back to `newName` and the original takes its name back.
 */
export function matviewSwapSql(m: MatviewPlan, direction: 'cutover' | 'rollback'): string[] {
  const view = (from: string, to: string) => `ALTER MATERIALIZED VIEW ${qname(m.schema, from)} RENAME TO ${ident(to)}`;
  const index = (from: string, to: string) => `ALTER INDEX ${qname(m.schema, from)} RENAME TO ${ident(to)}`;
  if (direction === 'cutover') {
    return [
      view(m.name, m.legacyName),
      ...m.indexes.map((i) => index(i.name, i.legacyName)),
      view(m.newName, m.name),
      ...m.indexes.map((i) => index(i.newName, i.name)),
    ];
  }
  return [
    view(m.name, m.newName),
    ...m.indexes.map((i) => index(i.name, i.newName)),
    view(m.legacyName, m.name),
    ...m.indexes.map((i) => index(i.legacyName, i.name)),
  ];
}
