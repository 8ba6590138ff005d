// Running the load generator's plans (src/loadplan.ts): startLoad sends their operations at a
// rate over a few connections and counts what happened per op kind, per table and per segment
// the caller marks ('copy', 'cutover', ...).
import { createHash } from 'node:crypto';
import pg from 'pg';
import { DEFAULT_LOAD_MIX, LOAD_KINDS, type LoadKind, type LoadMix, type TableLoadPlan } from './loadplan';
import { LoadStats, type LoadSummary } from './loadstats';

export interface LoadOptions {
  /** Total ops per second over all tables and connections. */
  ratePerSec: number;
  /** Connections (and ops in flight); default 4. */
  concurrency?: number;
  /** Relative weights; default DEFAULT_LOAD_MIX. Operations a plan cannot run are skipped (see `skipped`). */
  mix?: LoadMix;
  /** Stop by itself after this long; default: run until stop(). */
  durationMs?: number;
  /** Named prepared statements, as ORMs use; default true. */
  prepared?: boolean;
  /** Segment the first ops count under, until mark(); default 'load'. */
  segment?: string;
  /** Keep the keys inserted and deleted and the moves committed (memory grows with the run). */
  record?: boolean;
}

export interface TableLoad {
  /** Ops started from now on count under `label`. */
  mark(label: string): void;
  /** Holds new ops; resolves once the ops in flight are done (the table is quiet). */
  pause(): Promise<void>;
  resume(): void;
  summary(): LoadSummary;
  stop(): Promise<LoadSummary>;
  done: Promise<LoadSummary>;
}

/** After a stall, at most this much missed schedule is made up at once. */
const MAX_CATCH_UP_MS = 100;
const SEEN_CAP = 2000;
/** Rows of ours beyond this many are forgotten (never deleted), so memory stays bounded. */
const MINE_CAP = 100_000;

/** A set of keys with O(1) add, remove and random pick. */
class Keys {
  private list: string[][] = [];
  private at = new Map<string, number>();
  get size(): number {
    return this.list.length;
  }
  add(k: string[]): void {
    const id = JSON.stringify(k);
    if (this.at.has(id)) return;
    if (this.list.length >= MINE_CAP) this.take(Math.floor(Math.random() * this.list.length));
    this.at.set(id, this.list.length);
    this.list.push(k);
  }
  /** Removes the key; says whether it was there. */
  remove(k: string[]): boolean {
    const i = this.at.get(JSON.stringify(k));
    if (i === undefined) return false;
    this.take(i);
    return true;
  }
  /** Removes and returns a random key. */
  takeRandom(): string[] {
    return this.take(Math.floor(Math.random() * this.list.length));
  }
  private take(i: number): string[] {
    const k = this.list[i];
    const last = this.list.pop()!;
    this.at.delete(JSON.stringify(k));
    if (i < this.list.length) {
      this.list[i] = last;
      this.at.set(JSON.stringify(last), i);
    }
    return k;
  }
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Runner {
  plan: TableLoadPlan;
  name: string;
  seen: string[][];
  /** Keys of rows this run inserted and has not deleted (at most MINE_CAP). */
  mine: Keys;
  nextKey: bigint;
  keyLimit: bigint;
}

type Choice = { runner: Runner; kind: LoadKind; weight: number };

/** The pool the load writes through: the caller's (kept open at the end) or one of its own. */
class LoadPool {
  readonly pool: pg.Pool;
  /** The first error of an idle connection, reported in the summary when no op failed. */
  error: string | null = null;
  private readonly own: boolean;
  // An idle connection can die (a terminated backend); the pool replaces it on the next op.
  private readonly onError = (err: Error) => void (this.error ??= err.message);

  constructor(db: pg.Pool | string, max: number) {
    this.own = typeof db === 'string';
    this.pool = typeof db === 'string' ? new pg.Pool({ connectionString: db, max, application_name: 'ps-tableload' }) : db;
    this.pool.on('error', this.onError);
  }

  async finish(): Promise<void> {
    this.pool.off('error', this.onError);
    if (this.own) await this.pool.end().catch(() => undefined);
  }
}

/** Where a run's new integer keys start: a random free block of a million ids above the max, below the type's limit. */
async function startKeys(pool: pg.Pool, runner: Runner): Promise<void> {
  const nk = runner.plan.insert.ok ? runner.plan.insert.newKey : null;
  if (nk?.how !== 'above-max') return;
  const max = BigInt((await pool.query(nk.maxSql)).rows[0].max ?? 0);
  runner.keyLimit = BigInt(nk.limit);
  // Blocks of a million ids; a run takes a random one of those still free below the type's limit.
  const blocks = (runner.keyLimit - max) / 1_000_000n - 1n;
  const slots = blocks > 1_000_000n ? 1_000_000n : blocks;
  runner.nextKey = max + 1n + (slots > 0n ? BigInt(Math.floor(Math.random() * Number(slots))) * 1_000_000n : 0n);
}

/** A runner per plan, the (runner, kind) choices the mix allows, why the others are skipped; each runner's sample read. */
async function prepareRunners(pool: pg.Pool, plans: TableLoadPlan[], mix: Record<LoadKind, number>) {
  const skipped: Record<string, string> = {};
  const choices: Choice[] = [];
  for (const plan of plans) {
    const runner: Runner = { plan, name: `${plan.schema}.${plan.table}`, seen: [], mine: new Keys(), nextKey: 0n, keyLimit: 0n };
    for (const kind of LOAD_KINDS) {
      if (!(mix[kind] > 0)) continue;
      const op = plan[kind];
      if (op.ok) choices.push({ runner, kind, weight: mix[kind] });
      else skipped[`${runner.name} ${kind}`] = op.reason;
    }
    if (!choices.some((c) => c.runner === runner)) continue;
    runner.seen = (await pool.query({ text: plan.sampleSql, rowMode: 'array' })).rows;
    await startKeys(pool, runner);
  }
  return { skipped, choices };
}

// --- one op -----------------------------------------------------------------------------
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
const see = (r: Runner, k: string[]) => {
  if (r.seen.length < SEEN_CAP) r.seen.push(k);
  else r.seen[Math.floor(Math.random() * SEEN_CAP)] = k;
};

/** Picks an op by the mix's weights and runs it, noting its outcome. */
class LoadOps {
  private readonly totalWeight: number;

  constructor(
    private readonly pool: pg.Pool,
    private readonly choices: Choice[],
    private readonly stats: LoadStats,
    private readonly opts: { prepared: boolean; record: boolean },
  ) {
    this.totalWeight = choices.reduce((s, c) => s + c.weight, 0);
  }

  private send(text: string, values: unknown[]) {
    const name = this.opts.prepared ? { name: `tl_${createHash('sha1').update(text).digest('hex').slice(0, 24)}` } : {};
    return this.pool.query<string[]>({ text, values, rowMode: 'array', ...name });
  }

  /** One op, counted under `seg` (the segment current when it starts). */
  async runOne(seg: string): Promise<void> {
    let x = Math.random() * this.totalWeight;
    let choice = this.choices[this.choices.length - 1];
    for (const c of this.choices)
      if ((x -= c.weight) < 0) {
        choice = c;
        break;
      }
    const r = choice.runner;
    let kind = choice.kind;
    // Nothing of ours to delete yet: the op inserts instead.
    if (kind === 'delete' && r.mine.size === 0) kind = 'insert';
    const started = performance.now();
    try {
      if (r.seen.length === 0 && kind !== 'delete') throw new Error(`no row of ${r.name} left to ${kind} (none seen at start or inserted since)`);
      const rows = await this.run(r, kind);
      if (rows !== null) this.stats.note(seg, r.name, kind, started, rows, null);
    } catch (err) {
      this.stats.note(seg, r.name, kind, started, 0, err);
    }
  }

  /** The rows the op touched; null when the plan cannot run this kind (nothing is noted). */
  private async run(r: Runner, kind: LoadKind): Promise<number | null> {
    const p = r.plan;
    if (kind === 'insert' && p.insert.ok) return this.insert(r, p.insert);
    if (kind === 'update' && p.update.ok) return (await this.send(pick(p.update.columns).sql, pick(r.seen))).rowCount ?? 0;
    if (kind === 'move' && p.move.ok) return this.move(r, p.move.sql);
    if (kind === 'delete' && p.delete.ok) return this.delete(r, p.delete.sql);
    return null;
  }

  private async insert(r: Runner, op: Extract<TableLoadPlan['insert'], { ok: true }>): Promise<number> {
    const values: unknown[] = [...pick(r.seen)];
    if (op.newKey.how === 'above-max') {
      if (r.nextKey > r.keyLimit) throw new Error(`no ${op.newKey.column} left below ${r.keyLimit} for new rows`);
      values.push((r.nextKey++).toString());
    }
    const res = await this.send(op.sql, values);
    for (const k of res.rows) {
      r.mine.add(k);
      see(r, k);
      if (this.opts.record) this.stats.committed.inserted.push({ table: r.name, key: k });
    }
    return res.rowCount ?? 0;
  }

  private async move(r: Runner, sql: string): Promise<number> {
    const before = pick(r.seen);
    const n = Math.random() < 0.5 ? 1 : 2;
    const by = `${Math.random() < 0.5 ? '-' : ''}${r.plan.interval === 'quarter' ? `${3 * n} month` : `${n} ${r.plan.interval}`}`;
    const res = await this.send(sql, [...before, by]);
    const after = res.rows[0];
    if (after && JSON.stringify(after) !== JSON.stringify(before)) {
      // The partition key is part of the primary key: the row's key changed with it.
      const i = r.seen.indexOf(before);
      if (i >= 0) r.seen[i] = after;
      if (r.mine.remove(before)) r.mine.add(after);
    }
    if (after && this.opts.record) this.stats.committed.moved.push({ table: r.name, key: before, by });
    return res.rowCount ?? 0;
  }

  private async delete(r: Runner, sql: string): Promise<number> {
    const k = r.mine.takeRandom();
    const res = await this.send(sql, k);
    for (const d of res.rows) if (this.opts.record) this.stats.committed.deleted.push({ table: r.name, key: d });
    const id = JSON.stringify(k);
    const i = r.seen.findIndex((s) => JSON.stringify(s) === id);
    if (i >= 0) r.seen.splice(i, 1);
    return res.rowCount ?? 0;
  }
}

// --- scheduling: `concurrency` loops share one slot clock spaced 1/rate apart -------------
class Schedule {
  private nextSlot = performance.now();
  private stopping = false;
  private paused: { until: Promise<void>; release: () => void } | null = null;
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private readonly loops: Promise<void>[];

  constructor(
    private readonly spacing: number,
    concurrency: number,
    private readonly runOne: () => Promise<void>,
  ) {
    this.loops = Array.from({ length: concurrency }, () => this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.paused) {
        await this.paused.until;
        continue;
      }
      const now = performance.now();
      this.nextSlot = Math.max(this.nextSlot, now - MAX_CATCH_UP_MS);
      const slot = this.nextSlot;
      this.nextSlot += this.spacing;
      if (slot > now) await sleep(slot - now);
      if (this.stopping || this.paused) continue;
      this.inFlight++;
      await this.runOne();
      if (--this.inFlight === 0) {
        for (const f of this.idle) f();
        this.idle = [];
      }
    }
  }

  /** Holds new ops; resolves once the ops in flight are done. */
  pause(): Promise<void> {
    if (!this.paused && !this.stopping) {
      let release: () => void = () => undefined;
      const until = new Promise<void>((resolve) => (release = resolve));
      this.paused = { until, release };
    }
    return this.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.idle.push(resolve));
  }

  resume(): void {
    if (!this.paused) return;
    const p = this.paused;
    this.paused = null;
    this.nextSlot = performance.now(); // no burst for the paused time
    p.release();
  }

  /** Ends every loop once its op in flight is done. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.paused?.release();
    await Promise.all(this.loops);
  }
}

/**
 * Runs the plans' operations at `ratePerSec` over `concurrency` connections until stop() (or
 * `durationMs`). `db` is a pool (kept open at stop) or a connection string (a pool of its own).
 * Rejects before any write when no operation in the mix can run on any plan.
 */
export async function startLoad(db: pg.Pool | string, plans: TableLoadPlan | TableLoadPlan[], opts: LoadOptions): Promise<TableLoad> {
  if (!(opts.ratePerSec > 0)) throw new Error(`load: ratePerSec must be > 0, got ${opts.ratePerSec}`);
  const concurrency = opts.concurrency ?? 4;
  const mix = { ...DEFAULT_LOAD_MIX, ...opts.mix };
  const conn = new LoadPool(db, concurrency);
  let setup: Awaited<ReturnType<typeof prepareRunners>>;
  try {
    setup = await prepareRunners(conn.pool, Array.isArray(plans) ? plans : [plans], mix);
  } catch (err) {
    await conn.finish();
    throw err;
  }
  const { skipped, choices } = setup;
  if (choices.length === 0) {
    await conn.finish();
    throw new Error(
      `load: no operation in the mix can run: ${
        Object.entries(skipped)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ') || 'every weight is 0'
      }`,
    );
  }
  const record = !!opts.record;
  const stats = new LoadStats();
  const ops = new LoadOps(conn.pool, choices, stats, { prepared: opts.prepared ?? true, record });
  let segment = opts.segment ?? 'load';
  const schedule = new Schedule(1000 / opts.ratePerSec, concurrency, () => ops.runOne(segment));
  const summary = () => stats.summary(skipped, conn.error, record);

  let finished: Promise<LoadSummary> | null = null;
  let resolveDone: (s: LoadSummary) => void = () => undefined;
  const done = new Promise<LoadSummary>((resolve) => (resolveDone = resolve));
  const timer = opts.durationMs !== undefined ? setTimeout(() => void stop(), opts.durationMs) : null;
  const stop = (): Promise<LoadSummary> => {
    finished ??= (async () => {
      if (timer) clearTimeout(timer);
      await schedule.stop();
      stats.endedAt = performance.now();
      await conn.finish();
      const s = summary();
      resolveDone(s);
      return s;
    })();
    return finished;
  };

  return {
    mark(label) {
      segment = label;
    },
    pause: () => schedule.pause(),
    resume: () => schedule.resume(),
    summary,
    stop,
    done,
  };
}
