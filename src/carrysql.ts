// What a table carries beyond columns and indexes, as SQL: identity columns, dependent views,
// row-level security and the application's own triggers. Pure rendering from the plan (the
// catalog is read by activities/carried.ts); sqlgen's cutover and rollback call in here.
// Imports only the SQL helpers, so sqlgen can import this module without a cycle.
import { ident, list, literal, qname } from './sql';
import type { IdentityPlan, PublicationPlan, TablePlan } from './types';
import { fitName } from './partitions';

const integer = (x: string) => {
  if (!/^-?\d+$/.test(x)) throw new Error(`not an integer: ${x}`);
  return x;
};

export function legacySequenceName(sequence: string): string {
  return fitName(sequence, '_legacy');
}

/** Options of an identity sequence as ADD GENERATED ... AS IDENTITY (...) takes them. */
export function identityOptions(s: { increment: string; min: string; max: string; start: string; cache: string; cycle: boolean }): string {
  return (
    `INCREMENT BY ${integer(s.increment)} MINVALUE ${integer(s.min)} MAXVALUE ${integer(s.max)} ` +
    `START WITH ${integer(s.start)} CACHE ${integer(s.cache)} ${s.cycle ? 'CYCLE' : 'NO CYCLE'}`
  );
}

const POLICY_COMMANDS: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };

/** CREATE POLICY for the partitioned table, from a pg_policy row (roles [] means PUBLIC). */
export function policySql(
  schema: string,
  table: string,
  p: { name: string; permissive: boolean; cmd: string; roles: string[]; using: string | null; withCheck: string | null },
): string {
  const cmd = POLICY_COMMANDS[p.cmd];
  if (!cmd) throw new Error(`unknown policy command ${p.cmd}`);
  return (
    `CREATE POLICY ${ident(p.name)} ON ${qname(schema, table)} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${cmd} ` +
    `TO ${p.roles.length ? p.roles.map(ident).join(', ') : 'PUBLIC'}` +
    (p.using !== null ? ` USING (${p.using})` : '') +
    (p.withCheck !== null ? ` WITH CHECK (${p.withCheck})` : '')
  );
}

/** CREATE OR REPLACE VIEW from pg_get_viewdef text (schema-qualified) and the view's reloptions. */
export function viewSql(v: { schema: string; name: string; definition: string; options: string[] }): string {
  const options = v.options.map((o) => {
    const [key, ...rest] = o.split('=');
    if (!/^[a-z_]+$/.test(key)) throw new Error(`unexpected view option ${o}`);
    return `${key} = ${literal(rest.join('='))}`;
  });
  const body = v.definition.trim().replace(/;$/, '');
  return `CREATE OR REPLACE VIEW ${qname(v.schema, v.name)}${options.length ? ` WITH (${options.join(', ')})` : ''} AS ${body}`;
}

/** Puts a trigger in its recorded state: O enabled, D disabled, R replica only, A always. */
export function triggerStateSql(schema: string, table: string, name: string, enabled: string): string {
  const how: Record<string, string> = { O: 'ENABLE', D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };
  return `ALTER TABLE ${qname(schema, table)} ${how[enabled] ?? 'ENABLE'} TRIGGER ${ident(name)}`;
}

/**
 * Moves one publication's membership from table `from` to table `to` (both in `schema`), with its
 * column list and row filter: one DO block, so it is a no-op where it was done already or where
 * the operator dropped the publication or the table from it since preflight (a cutover or
 * rollback must not fail on that).
 */
export function publicationMoveSql(schema: string, p: PublicationPlan, from: string, to: string): string {
  const pub = literal(p.name);
  const member = (t: string) =>
    `EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid ` +
    `WHERE p.pubname = ${pub} AND r.prrelid = pg_catalog.to_regclass(${literal(qname(schema, t))}))`;
  const add =
    `ALTER PUBLICATION ${ident(p.name)} ADD TABLE ${qname(schema, to)}` +
    (p.columns ? ` (${list(p.columns)})` : '') +
    (p.rowFilter !== null ? ` WHERE (${p.rowFilter})` : '');
  const body =
    ` BEGIN IF ${member(from)} THEN ALTER PUBLICATION ${ident(p.name)} DROP TABLE ${qname(schema, from)}; END IF; ` +
    `IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = ${pub}) AND NOT ${member(to)} THEN ${add}; END IF; END `;
  if (body.includes('$ps_pub$')) throw new Error(`publication ${p.name}: its statement contains the DO block's quote`);
  return `DO $ps_pub$${body}$ps_pub$`;
}

/** Every recorded publication moved from `from` to `to` (cutover: legacy to new; rollback: back). */
export function publicationsSql(tp: TablePlan, from: string, to: string): string[] {
  return (tp.publications ?? []).map((p) => publicationMoveSql(tp.schema, p, from, to));
}

/** The table's old self after the cutover's renames: `<table>_legacy`, or the attach strategy's history partition. */
function oldSelf(tp: TablePlan): string {
  return tp.attach ? tp.attach.history : tp.names.legacy;
}

function identitySql(tp: TablePlan, i: IdentityPlan): string[] {
  const s = tp.schema;
  return [
    // The legacy sequence steps aside so the new one takes its name (and survives cleanup).
    `ALTER SEQUENCE ${qname(s, i.sequence)} RENAME TO ${ident(i.legacySequence)}`,
    `ALTER TABLE ${qname(s, tp.table)} ALTER COLUMN ${ident(i.column)} ADD GENERATED ${i.kind === 'a' ? 'ALWAYS' : 'BY DEFAULT'} ` +
      `AS IDENTITY (SEQUENCE NAME ${qname(s, i.sequence)} ${i.options})`,
    // Under the cutover's lock nobody draws from the legacy sequence: continue exactly where it is.
    `SELECT setval(${literal(qname(s, i.sequence))}::regclass, last_value, is_called) FROM ${qname(s, i.legacySequence)}`,
  ];
}

/**
 * Statements of the cutover transaction, after the renames (so `tp.table` names the partitioned
 * table): identity continued from the legacy sequence, views re-pointed, the application's
 * triggers moved (off on the legacy table, so a mirrored write does not fire them twice), RLS on.
 */
export function carryCutoverSql(tp: TablePlan): string[] {
  const s = tp.schema;
  return [
    ...(tp.identities ?? []).flatMap((i) => identitySql(tp, i)),
    ...(tp.views ?? []).map((v) => v.createSql),
    ...(tp.triggers ?? []).flatMap((t) => [
      triggerStateSql(s, tp.names.legacy, t.name, 'D'),
      t.createSql,
      ...(t.enabled === 'O' ? [] : [triggerStateSql(s, tp.table, t.name, t.enabled)]),
    ]),
    ...(tp.rowSecurity?.enabled ? [`ALTER TABLE ${qname(s, tp.table)} ENABLE ROW LEVEL SECURITY`] : []),
    ...(tp.rowSecurity?.forced ? [`ALTER TABLE ${qname(s, tp.table)} FORCE ROW LEVEL SECURITY`] : []),
    // Publications: the partitioned table replaces the old one (whose mirrored writes must not
    // go out under the legacy name, nor, for attach, the history partition's twice).
    ...publicationsSql(tp, oldSelf(tp), tp.table),
  ];
}

/**
 * Rollback after cutover, after the renames back (`tp.table` is the plain table again):
 * `beforeDrop` runs while the partitioned table still exists, `afterDrop` once it is gone.
 */
export function carryRollbackSql(tp: TablePlan): { beforeDrop: string[]; afterDrop: string[] } {
  const s = tp.schema;
  return {
    beforeDrop: [
      // The new sequence handed out every id since cutover: the plain table continues from it.
      ...(tp.identities ?? []).map(
        (i) => `SELECT setval(${literal(qname(s, i.legacySequence))}::regclass, last_value, is_called) FROM ${qname(s, i.sequence)}`,
      ),
      ...(tp.views ?? []).map((v) => v.createSql),
      ...(tp.triggers ?? []).map((t) => triggerStateSql(s, tp.table, t.name, t.enabled)),
      ...publicationsSql(tp, tp.names.partitioned, tp.table),
    ],
    afterDrop: (tp.identities ?? []).map((i) => `ALTER SEQUENCE ${qname(s, i.legacySequence)} RENAME TO ${ident(i.sequence)}`),
  };
}
