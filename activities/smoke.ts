// The rehearsal's application checks: the statements the application runs (smokeSql, or a
// built-in set per table), their answers, EXPLAIN plans and timings. Every statement runs in
// a transaction that is rolled back (deferred constraints checked first), so a write is shown
// to succeed without ever being committed: staging keeps exactly what the writer committed.
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { sqlFile, trialTx, withClient } from '../src/db';
import type { SmokeAnswer, SmokeItem, SmokePlan } from '../src/rehearsal-report';
import * as sql from '../src/sqlgen';
import { deleteByKeySql, explainSql, genericPlanSql, legacyInPlaceSql, rangeScanSql, selectByKeySql, updateByKeySql } from '../src/smokesql';
import { isPeriod } from '../src/partitions';
import type { TablePlan } from '../src/types';
import { bindDeps, Deps, stage } from './context';
import { sampleRow } from './marked';
import { unprunedStatements } from './preflight';
import { cloneInsertSql, keyLiteral, keyLiteralWhere, markerBase, touchColumn } from '../src/markedsql';

const TIMED_RUNS = 3;
// A statement that ends or opens a transaction would commit what we roll back.
const TX_CONTROL = /^\s*(begin|commit|end|rollback|abort|start\s+transaction|savepoint|release|prepare\s+transaction|commit\s+prepared)\b/i;

/** Runs one statement in a transaction that is always rolled back; one statement only (extended protocol). */
/**
 * `swap`: first, in the same rolled-back transaction, each table's `<table>_legacy` takes the
 * table's name (the table steps aside), so the statement reads the plain table the mirror keeps
 * equal: the answer before cutover, on the same rows as the answer after it.
 */
async function rolledBack(c: pg.ClientBase, text: string, swap: TablePlan[] = []): Promise<{ result: pg.QueryResult; ms: number }> {
  if (TX_CONTROL.test(text)) throw new Error('transaction control statements are not allowed in smokeSql');
  return trialTx(c, async () => {
    await c.query(sqlFile('session/statement_timeout_60s'));
    if (swap.length) {
      // Under deadlock_timeout (1 s by default): the renames wait on no application lock for long.
      await c.query(sqlFile('session/lock_timeout_500ms'));
      for (const tp of swap) for (const s of legacyInPlaceSql(tp)) await c.query(s);
    }
    const t0 = performance.now();
    // queryMode extended: PostgreSQL refuses a second statement smuggled after a semicolon.
    const result = await c.query({ text, queryMode: 'extended' } as pg.QueryConfig);
    const ms = performance.now() - t0;
    await c.query(sqlFile('session/constraints_immediate'));
    return { result, ms };
  });
}

/** Order-insensitive digest of a result: PostgreSQL may return unordered rows in another order once partitioned. */
export function answerOf(result: pg.QueryResult): { answer: string; preview: string } {
  const rows = result.rows.map((r) => JSON.stringify(r)).sort();
  const isRead = result.command === 'SELECT' || result.command === 'SHOW' || result.command === 'VALUES';
  return {
    answer: isRead ? createHash('md5').update(rows.join('\n')).digest('hex') : '',
    preview: (rows[0] ?? '').slice(0, 120),
  };
}

// Non-verbose EXPLAIN names relations without their schema; partitions are matched by name.
interface PlanNode {
  'Relation Name'?: string;
  Plans?: PlanNode[];
  'Total Cost'?: number;
}

function relationsOf(node: PlanNode, out: Set<string>): Set<string> {
  if (node['Relation Name']) out.add(node['Relation Name']);
  for (const p of node.Plans ?? []) relationsOf(p, out);
  return out;
}

/** The built-in set per table: select by id, range scan of one partition's range, insert, update, delete. */
export async function builtinSmoke({ pools }: Deps, database: string, plans: TablePlan[]): Promise<{ items: SmokeItem[]; notes: string[] }> {
  return stage('application testing', undefined, () =>
    withClient(pools.get(database), async (c) => {
      const items: SmokeItem[] = [];
      const notes: string[] = [];
      for (const tp of plans) {
        const sample = await sampleRow(c, tp);
        if (!sample) {
          notes.push(`${tp.table} is empty: no built-in statements for it`);
          continue;
        }
        items.push(...builtinItems(tp, sample, notes));
      }
      return { items, notes };
    }),
  );
}

/** The built-in statements on the sample row of one table; what cannot be tested goes to `notes`. */
function builtinItems(tp: TablePlan, sample: { key: string[]; partitionKey: string }, notes: string[]): SmokeItem[] {
  const items: SmokeItem[] = [];
  const where = keyLiteralWhere(tp, sample.key);
  const day = sample.partitionKey.slice(0, 10);
  const periods = tp.partitions.filter(isPeriod);
  const range = periods.find((p) => p.from <= day && day < p.to);
  items.push({ name: `${tp.table}: select by id`, table: tp.table, builtin: true, sql: selectByKeySql(tp, where) });
  if (range) {
    items.push({
      name: `${tp.table}: range scan ${range.from}..${range.to}`,
      table: tp.table,
      builtin: true,
      expectPruning: true,
      sql: rangeScanSql(tp, { from: keyLiteral(tp, range.from), to: keyLiteral(tp, range.to) }),
    });
  }
  const base = markerBase(tp);
  const last = periods[periods.length - 1];
  // The attach strategy refuses a key at or after its cutoff until cutover: the test row is dated like the sample.
  if (base !== null) {
    items.push({
      name: `${tp.table}: insert`,
      table: tp.table,
      builtin: true,
      sql: cloneInsertSql(tp, { sampleKey: sample.key, id: base - 1, day: tp.attach ? day : last.from }),
    });
  } else notes.push(`${tp.table}: no integer key column to mark a test row with; insert not tested`);
  const touch = touchColumn(tp);
  if (touch) items.push({ name: `${tp.table}: update`, table: tp.table, builtin: true, sql: updateByKeySql(tp, touch.set, where) });
  items.push({ name: `${tp.table}: delete`, table: tp.table, builtin: true, sql: deleteByKeySql(tp, where) });
  return items;
}

/** Each statement's answer (rows digest or rows affected), in a rolled-back transaction. */
export async function smokeAnswers({ pools }: Deps, database: string, items: SmokeItem[], legacyOf: TablePlan[] = []): Promise<SmokeAnswer[]> {
  return withClient(pools.get(database), async (c) => {
    const out: SmokeAnswer[] = [];
    for (const item of items) {
      try {
        const { result, ms } = await rolledBack(c, item.sql, legacyOf);
        out.push({ name: item.name, ok: true, command: result.command, rowCount: result.rowCount ?? 0, ...answerOf(result), ms: round(ms) });
      } catch (err) {
        out.push({ name: item.name, ok: false, command: '', rowCount: 0, answer: '', preview: '', error: (err as Error).message, ms: 0 });
      }
    }
    return out;
  });
}

/** EXPLAIN (no execution) and the median of timed runs of each statement; partitions in each plan. */
export async function smokePlans({ pools }: Deps, database: string, items: SmokeItem[], plans: TablePlan[]): Promise<SmokePlan[]> {
  return withClient(pools.get(database), async (c) => {
    // Partitions of each of our tables as they are now (none before cutover).
    const parts = new Map<string, Set<string>>();
    for (const tp of plans) {
      const r = await c.query(sqlFile('catalog/partition_names'), [sql.qname(tp.schema, tp.table)]);
      parts.set(tp.table, new Set(r.rows.map((x) => x.name as string)));
    }
    const out: SmokePlan[] = [];
    for (const item of items) {
      try {
        out.push(await planOf(c, item, parts));
      } catch (err) {
        out.push({ name: item.name, ok: false, error: (err as Error).message, ms: 0, runs: 0, totalCost: 0, relations: [], partitions: [] });
      }
    }
    return out;
  });
}

/** One statement's plan, the median of its timed runs (none for a generic one), and the partitions of `parts` it reads. */
async function planOf(c: pg.ClientBase, item: SmokeItem, parts: Map<string, Set<string>>): Promise<SmokePlan> {
  const explained = item.generic
    ? await genericPlanOf(c, item.sql)
    : ((await rolledBack(c, explainSql(item.sql))).result.rows[0]['QUERY PLAN'][0].Plan as PlanNode);
  const relations = [...relationsOf(explained, new Set())].sort();
  const times: number[] = [];
  for (let i = 0; i < (item.generic ? 0 : TIMED_RUNS); i++) times.push((await rolledBack(c, item.sql)).ms);
  times.sort((a, b) => a - b);
  const partitions = [...parts]
    .filter(([, set]) => set.size > 0)
    .map(([table, set]) => ({ table, scanned: relations.filter((r) => set.has(r)).length, total: set.size }))
    .filter((p) => p.scanned > 0 || relations.includes(p.table));
  return {
    name: item.name,
    ok: true,
    ms: times.length ? round(times[Math.floor(times.length / 2)]) : 0,
    runs: times.length,
    totalCost: explained['Total Cost'] ?? 0,
    relations,
    partitions,
  };
}

/** The generic plan of a statement with `$n` parameters (pg_stat_statements' text): prepared, explained with NULLs, never run. */
async function genericPlanOf(c: pg.ClientBase, text: string): Promise<PlanNode> {
  const q = genericPlanSql(`ps_generic_${createHash('sha1').update(text).digest('hex').slice(0, 12)}`, text);
  try {
    return await trialTx(c, async () => {
      await c.query(sqlFile('session/statement_timeout_60s'));
      await c.query(sqlFile('session/force_generic_plan'));
      await c.query(q.prepare);
      return (await c.query(q.explain)).rows[0]['QUERY PLAN'][0].Plan as PlanNode;
    });
  } finally {
    // A prepared statement outlives the transaction's rollback.
    await c.query(q.deallocate).catch(() => undefined);
  }
}

/**
 * The application's most frequent statements on each table that name its key but not its
 * partition key (pg_stat_statements, as preflight's plan names them), as generic items for the
 * rehearsal's performance phase; `notes` say why there are none where the extension is missing.
 */
export async function unprunedSmoke({ pools }: Deps, database: string, plans: TablePlan[]): Promise<{ items: SmokeItem[]; notes: string[] }> {
  return stage('rehearsal', undefined, () =>
    withClient(pools.get(database), async (c) => {
      const items: SmokeItem[] = [];
      const notes: string[] = [];
      for (const tp of plans) {
        const frequent = await unprunedStatements(c, tp);
        if (frequent === null) notes.push(`${tp.table}: pg_stat_statements is not installed and loaded in ${database}: no application statements to EXPLAIN`);
        for (const [i, s] of (frequent ?? []).entries()) {
          items.push({ name: `${tp.table}: frequent statement ${i + 1} (${s.calls} calls)`, sql: s.query, table: tp.table, builtin: false, generic: true });
        }
      }
      return { items, notes };
    }),
  );
}

export const smokeActivities = (deps: Deps) => bindDeps(deps, { builtinSmoke, smokeAnswers, smokePlans, unprunedSmoke });

const round = (x: number) => Math.round(x * 100) / 100;
