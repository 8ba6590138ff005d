// The history split's first stages (README "Splitting the history partition"): preflight (read
// only: the plan or a refusal naming why), prepare (`<table>_split` and its period tables, the
// history's CHECK, the key index when needed, the mirror trigger; each recorded, each skipped
// where done), the copy of one period (keyset batches, each one transaction recording its
// position, paced by the adaptive throttle) and its verification. SQL from src/splitsql.ts.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { inTx, sqlFile, withClient } from '../src/db';
import { fail } from '../src/errors';
import { qname } from '../src/sql';
import { readBounds } from '../src/retentionsql';
import { MINVALUE } from '../src/partitions';
import { splitNames, splitPeriods, type PeriodVerification, type SplitPlan } from '../src/splitplan';
import * as s from '../src/splitsql';
import { dropIndexConcurrentlySql } from '../src/attachsql';
import type { TablePlan } from '../src/types';
import { audit, bindDeps, Deps, keepAlive, runId, stage, throwIfCancelled, workflowId } from './context';
import { ownership, recordCreated, relations } from './bookkeeping';
import { budgetFor, deadlockTimeoutMs, isLockGiveUp, lockedTx } from './locks';
import { switchedOverTables } from './maintain-partitions';
import { othersActive, Pacer, probeMs, type PacerEnv } from './pacer';

const shown = (p: { schema: string; table: string }) => `${p.schema}.${p.table}`;
const refuse = (p: { schema: string; table: string }, why: string) =>
  fail('StateConflict', `splitHistory of ${shown(p)} refused: ${why}. Nothing was changed.`, { table: p.table, stage: 'split-preflight' });

/** The attach plan of a table that an attach switchover cut over, or a refusal. */
async function attachPlanOf(deps: Deps, database: string, schema: string, table: string): Promise<TablePlan> {
  const [tp] = await switchedOverTables(deps, database, schema, [table]);
  if (!tp.attach) {
    throw refuse(
      { schema, table },
      'it was switched over with the copy strategy, whose old rows are in period partitions already; splitHistory splits the history partition an attach switchover leaves',
    );
  }
  return tp;
}

/** What preflight reads about the history partition and the table, refusing what the split cannot carry. */
async function readTable(c: pg.ClientBase, tp: TablePlan, cutoff: string, history: string) {
  const who = { schema: tp.schema, table: tp.table };
  const parent = qname(tp.schema, tp.table);
  const children = (await c.query(sqlFile('catalog/partition_bounds'), [parent])).rows as { name: string; bound: string }[];
  const hist = children.find((x) => x.name === history);
  if (!hist) throw refuse(who, `${tp.schema}.${history} is not a partition of it (split already, or not an attach switchover's table any more)`);
  const b = readBounds(hist.bound);
  if (!b || b.from !== MINVALUE || b.to !== cutoff)
    throw refuse(who, `${tp.schema}.${history} is attached ${hist.bound}, not FROM (MINVALUE) TO ('${cutoff}') as its switchover made it`);
  const cols = (await c.query(sqlFile('catalog/column_types'), [parent])).rows.map((r) => `${r.name} ${r.type}`).join(', ');
  const planned = tp.columns.map((x) => `${x.name} ${x.type}`).join(', ');
  if (cols !== planned) throw refuse(who, `its columns changed since its switchover (now: ${cols}; then: ${planned})`);
  const idx = (await c.query(sqlFile('split/parent_indexes'), [parent])).rows;
  const constraints = idx.filter((i) => i.contype !== null);
  if (constraints.length) {
    throw refuse(
      who,
      `its ${constraints.map((i) => `constraint ${i.name}`).join(', ')} (unique or exclusion, beside the primary key) cannot be carried to the period tables yet`,
    );
  }
  return {
    indexes: idx.map((i) => ({ name: i.name as string, unique: i.unique as boolean, using: i.using as string })),
    foreignKeys: (await c.query(sqlFile('split/foreign_keys'), [parent])).rows.map((r) => ({ name: r.name as string, definition: r.definition as string })),
  };
}

/** Preflight, read only: the periods, names and what the period tables get, or a refusal naming why. */
export async function splitPreflight(deps: Deps, database: string, schema: string, table: string): Promise<SplitPlan> {
  return stage('split-preflight', table, async () => {
    const tp = await attachPlanOf(deps, database, schema, table);
    const { cutoff, history } = tp.attach!;
    const names = splitNames(table, history);
    return withClient(deps.pools.get(database), (c) =>
      inTx(
        c,
        async () => {
          const shape = await readTable(c, tp, cutoff, history);
          await c.query(sqlFile('session/utc'));
          const range = (await c.query(s.historyRangeSql({ schema, partitionKey: tp.partitionKey }, history))).rows[0];
          const periods = splitPeriods(table, tp.interval, range.min, cutoff);
          const keyIndexExisting = ((await c.query(sqlFile('split/key_index'), [qname(schema, history), tp.partitionKey])).rows[0]?.name as string) ?? null;
          const wanted = [names.split, names.historyLegacy, ...periods.map((p) => p.name), ...(keyIndexExisting ? [] : [names.keyIndex])];
          const taken = [...(await relations(c, schema, wanted)).keys()];
          if (taken.length) {
            throw refuse(
              { schema, table },
              `${taken.map((n) => `${schema}.${n}`).join(', ')} already exist${taken.length > 1 ? '' : 's'}; a split under way or not cleaned up ` +
                `is rolled back or cleaned up with "mode": "rollback" or "cleanup", anything else renamed or dropped first`,
            );
          }
          const rowsEstimated = Number((await c.query(sqlFile('split/estimate'), [qname(schema, history)])).rows[0].rows);
          return {
            schema,
            table,
            partitionKey: tp.partitionKey,
            interval: tp.interval,
            cutoff,
            names,
            periods,
            keyIndexExisting,
            rowsEstimated,
            dataRange: range,
            ...shape,
            tp,
          };
        },
        sqlFile('session/begin_read_only'),
      ),
    );
  });
}

/** `<table>_split` with the period tables and the reverse mirror's function, in one transaction (skipped when ours exists). */
async function makeSplitTables(pool: pg.Pool, p: SplitPlan, lockTimeoutMs: number) {
  await lockedTx(pool, { what: `split tables of ${shown(p)}`, lockTimeoutMs }, async (tx) => {
    const o = await ownership(tx.client, p.tp, p.names.split, 'split');
    if (o.ours) return;
    if (o.exists) throw refuse(p, `${p.schema}.${p.names.split} exists and was not made by a split of this table`);
    // Catalog work on new, empty tables: lock waits within the budget (LIKE reads the table), no statement limit.
    for (const x of s.splitParentSql(p)) await tx.long(x);
    await recordCreated(tx.client, p.tp, p.names.split, 'split');
    for (const period of p.periods) {
      for (const x of s.periodTableSql(p, period)) await tx.long(x);
      await recordCreated(tx.client, p.tp, period.name, 'split-period');
    }
    for (const x of s.backFunctionSql(p)) await tx.long(x);
  });
}

/** The index the copy reads in, CONCURRENTLY, when the history partition has none beginning with the key; an invalid one left by a crash is built again. */
async function makeKeyIndex(c: pg.ClientBase, p: SplitPlan) {
  if (p.keyIndexExisting) return;
  const valid = (await c.query(sqlFile('catalog/index_valid'), [p.schema, p.names.keyIndex])).rows[0]?.indisvalid as boolean | undefined;
  if (valid === false) await keepAlive(() => c.query(dropIndexConcurrentlySql(p.schema, p.names.keyIndex)));
  if (valid !== true) await keepAlive(() => c.query(s.keyIndexSql(p)), { index: p.names.keyIndex });
  if (!(await ownership(c, p.tp, p.names.keyIndex, 'split-index')).ours) await recordCreated(c, p.tp, p.names.keyIndex, 'split-index');
}

/** The history's bound as a validated CHECK: NOT VALID under the lock budget, then VALIDATE (writers pass its lock). */
async function historyCheck(c: pg.PoolClient, p: SplitPlan, lockTimeoutMs: number) {
  const ck = s.historyCheckSql(p);
  const state = (await c.query(sqlFile('catalog/constraint_validated'), [qname(p.schema, p.names.history), p.names.historyCheck])).rows[0];
  if (state?.convalidated === true) return;
  if (!state) await lockedTx({ client: c }, { what: `CHECK of ${p.schema}.${p.names.history}`, lockTimeoutMs }, (tx) => tx.q(ck.add));
  await keepAlive(() => lockedTx({ client: c }, { what: `CHECK validation of ${p.schema}.${p.names.history}`, lockTimeoutMs }, (tx) => tx.long(ck.validate)));
}

/** Prepare: the period tables, the key index, the history's CHECK, then the mirror trigger (each skipped where done); the plan recorded (SPLIT-PLAN). */
export async function splitPrepare({ pools }: Deps, database: string, p: SplitPlan, lockTimeoutMs: number): Promise<{ table: string; ms: number }> {
  return stage('split-prepare', p.table, async () => {
    const t0 = Date.now();
    const pool = pools.get(database);
    await withClient(pool, (c) => inTx(c, () => audit(c, { schema: p.schema, table: p.table, stage: 'SPLIT-PLAN', details: p })));
    await makeSplitTables(pool, p, lockTimeoutMs);
    await withClient(pool, async (c) => {
      await makeKeyIndex(c, p);
      await historyCheck(c, p, lockTimeoutMs);
      const enabled = (await c.query(sqlFile('catalog/trigger_enabled'), [qname(p.schema, p.names.history), p.names.mirrorTrigger])).rows[0]?.enabled;
      if (enabled !== 'A') {
        // Creating a trigger locks the history partition against writers: within the budget, retried.
        await lockedTx({ client: c }, { what: `mirror trigger on ${p.schema}.${p.names.history}`, lockTimeoutMs }, async (tx) => {
          for (const x of s.splitMirrorSql(p)) await tx.q(x);
        });
      }
    });
    return { table: p.table, ms: Date.now() - t0 };
  });
}

export interface PeriodCopy {
  period: string;
  rowsCopied: number;
  batches: number;
  resumedFrom: string[] | null;
  ms: number;
  /** Why the throttle slowed the copy down last, if it did. */
  throttled: string | null;
}

export interface SplitCopyOpts {
  batchSize: number;
  pauseMs: number;
  adaptive: boolean;
  lockTimeoutMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The throttle's view of the database: a single stream is quiet between its own batches. */
const PACER_ENV: PacerEnv = {
  quietly: (_c, measure) => measure(),
  othersActive,
  now: () => Date.now(),
};

/** One batch in its own transaction with the period's position; its row locks wait at most the lock budget (ours gives way to a writer, then retries). */
async function copyBatch(
  c: pg.ClientBase,
  p: SplitPlan,
  index: number,
  pos: { cursor: string[] | null; copied: number; batches: number },
  opts: SplitCopyOpts,
) {
  const period = p.periods[index];
  const text = s.splitBatchSql(p, period, pos.cursor !== null);
  const budget = `${budgetFor(opts.lockTimeoutMs, await deadlockTimeoutMs(c))}ms`;
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTx(c, async () => {
        await c.query(sqlFile('session/async_commit'));
        await c.query(sqlFile('session/lock_timeout'), [budget]);
        const r = (await c.query({ text, values: [...(pos.cursor ?? []), opts.batchSize] })).rows[0] as {
          rows: number;
          inserted: number;
          last: string[] | null;
        };
        const done = r.rows === 0;
        const at = { cursor: r.rows > 0 ? r.last : pos.cursor, copied: pos.copied + r.inserted, batches: pos.batches + (r.rows > 0 ? 1 : 0) };
        await c.query(sqlFile('bookkeeping/copy_progress'), [workflowId(), runId(), period.name, 0, at.cursor, at.copied, at.batches, done]);
        return { done, at };
      });
    } catch (err) {
      if (!isLockGiveUp(err) || attempt >= 20) throw err;
      await sleep(Math.min(2000, 50 * 2 ** attempt));
    }
  }
}

/** The copy of one period, resumed from its recorded position, paced by the adaptive throttle and pauseMs. */
export async function splitCopyPeriod({ pools }: Deps, database: string, p: SplitPlan, index: number, opts: SplitCopyOpts): Promise<PeriodCopy> {
  const period = p.periods[index];
  return stage('split-copy', p.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const saved = (await c.query(sqlFile('bookkeeping/copy_position'), [workflowId(), runId(), period.name, 0])).rows[0];
      const pos = { cursor: (saved?.cursor as string[] | null) ?? null, copied: Number(saved?.rows_copied ?? 0), batches: Number(saved?.batches ?? 0) };
      const resumedFrom = pos.cursor;
      let throttled: string | null = null;
      const pacer = opts.adaptive ? new Pacer(0, probeMs, PACER_ENV) : null;
      if (pacer && !saved?.done) await pacer.calibrate(c);
      for (let done = !!saved?.done; !done;) {
        const t1 = Date.now();
        const r = await copyBatch(c, p, index, pos, opts);
        Object.assign(pos, r.at);
        done = r.done;
        Context.current().heartbeat({ period: period.name, ...pos });
        if (done) break;
        if (pacer) {
          const pace = await pacer.next(c, Date.now() - t1);
          if (pace.why) throttled = pace.why;
          if (pace.waitMs > 0) {
            await sleep(pace.waitMs);
            await pacer.afterWait(c);
          }
        }
        if (opts.pauseMs > 0) await sleep(opts.pauseMs);
        throwIfCancelled();
      }
      return { period: period.name, rowsCopied: pos.copied, batches: pos.batches, resumedFrom, ms: Date.now() - t0, throttled };
    }),
  );
}

/** A period's verification: count and row hash of the history's rows in its range and of the period table, in one snapshot; audited (SPLIT-VERIFY <period>). */
export async function splitVerifyPeriod({ pools }: Deps, database: string, p: SplitPlan, index: number): Promise<PeriodVerification> {
  const period = p.periods[index];
  return stage('split-verify', p.table, () =>
    withClient(pools.get(database), async (c) => {
      const t0 = Date.now();
      const sql = s.periodVerifySql(p, period);
      const [h, t] = await keepAlive(() =>
        inTx(c, async () => [(await c.query(sql.history)).rows[0], (await c.query(sql.period)).rows[0]], sqlFile('session/begin_repeatable_read')),
      );
      const v: PeriodVerification = {
        period: period.name,
        ok: h.rows === t.rows && h.row_hash === t.row_hash,
        historyRows: Number(h.rows),
        periodRows: Number(t.rows),
        historyHash: h.row_hash,
        periodHash: t.row_hash,
        ms: Date.now() - t0,
      };
      await audit(c, { schema: p.schema, table: p.table, stage: `SPLIT-VERIFY ${period.name}`, ms: v.ms, details: v });
      return v;
    }),
  );
}

export const splitActivities = (deps: Deps) => bindDeps(deps, { splitPreflight, splitPrepare, splitCopyPeriod, splitVerifyPeriod });
