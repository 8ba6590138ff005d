// The switchover input, validated with zod. Imported by workflows (deterministic: no I/O here),
// the client scripts and the activities, so everyone agrees on defaults.
import { z } from 'zod';
import { DURATION, durationMs } from './durations';
import { isTimeZone, secondsOfDay, WEEKDAYS } from './windows';

// A plain PostgreSQL identifier: we still quote every identifier, but refusing anything else
// up front means a name carrying SQL never reaches the database at all.
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain identifier (letters, digits, underscore; at most 63 chars)');

/** A database target: `default`, `<name>` (DATABASE_URL_<NAME>), or `<target>/<database>`: another database on that target's server (a fleet's `like`). */
export const TARGET = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,62}(\/[A-Za-z_][A-Za-z0-9_]{0,62})?$/,
    'must be a database target: "default", "<name>" (DATABASE_URL_<NAME>) or "<target>/<database>"',
  );

export const INTERVALS = ['day', 'week', 'month', 'quarter', 'year'] as const;
export type Interval = (typeof INTERVALS)[number];

const duration = z.string().regex(DURATION, 'must be a duration like "90s", "30m", "24h" or "2d"');

export const tableSpec = z.strictObject({
  table: identifier,
  partitionKey: identifier,
  interval: z.enum(INTERVALS),
  /** Columns summed as checksums at each stage; default: the table's money-like columns. */
  sumColumns: z.array(identifier).optional(),
});
export type TableSpec = z.infer<typeof tableSpec>;

export const approvalSpec = z.strictObject({
  required: z.boolean().default(true),
  timeout: duration.default('24h'),
  approvers: z.array(z.string().min(1)).default([]),
  onTimeout: z.enum(['rollback', 'fail']).default('rollback'),
  /**
   * While approval waits, the rows written since the last comparison are compared this often and
   * their change-log entries forgotten: the log stays as large as what is written in between.
   */
  verifyEvery: duration.default('10m'),
});

// The throttle's bounds, shared by the input and the running switchover's `retune` update.
const bounds = {
  pauseMs: z.number().int().min(0).max(60000),
  parallelism: z.number().int().min(1).max(16),
  maxBatchMs: z.number().int().min(1).max(3_600_000),
  maxLockWaitMs: z.number().int().min(1).max(3_600_000),
  maxReplicationLagMs: z.number().int().min(1).max(86_400_000),
  brakePauseMs: z.number().int().min(1).max(60000),
};
/**
 * Default lock budget of each short transaction of ours that takes a lock the application may
 * hold (activities/locks.ts caps it below deadlock_timeout).
 */
export const DEFAULT_LOCK_TIMEOUT_MS = 2000;
const lockTimeoutSpec = z.number().int().min(10).max(60000).default(DEFAULT_LOCK_TIMEOUT_MS);
/**
 * The cutover behind a long-running session: off by default. `cancelBlockersAfter`: once the
 * cutover has tried that long (from its first attempt), each try cancels the sessions that hold
 * what it waits for (pg_cancel_backend; pg_terminate_backend with `terminate`), never one of a
 * role in `protectRoles` (or a member of one), and names each in the history and the audit table.
 */
export const cutoverWindowSpec = z.strictObject({
  start: z.string().refine((t) => secondsOfDay(t) !== null, 'must be a local time "HH:MM" or "HH:MM:SS" (00:00 to 23:59:59)'),
  end: z
    .string()
    .refine((t) => secondsOfDay(t) !== null, 'must be a local time "HH:MM" or "HH:MM:SS" (00:00 to 23:59:59); at or before start it ends the next day'),
  timeZone: z.string().refine(isTimeZone, 'must be an IANA time zone the worker knows, e.g. "Europe/Berlin" or "UTC"'),
  days: z.array(z.enum(WEEKDAYS)).min(1).optional(),
});
const instant = z.string().refine((t) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(t) && !Number.isNaN(Date.parse(t)), {
  message: 'must be an instant with its offset, e.g. "2026-12-08T02:00:00+01:00" or "2026-12-08T01:00:00Z"',
});
export const cutoverSpec = z.strictObject({
  /** The cutover runs only inside this window (approval outside it is kept; the cutover waits on a durable timer). */
  window: cutoverWindowSpec.optional(),
  /** Nor before this instant. */
  notBefore: instant.optional(),
  cancelBlockersAfter: duration
    .refine(
      (d) => !DURATION.test(d) || durationMs(d) <= 300_000,
      'must be at most "5m": the cutover gives up after its 20 attempts, about 6 minutes after its first one, so a longer wait would never cancel anything',
    )
    .optional(),
  terminate: z.boolean().default(false),
  protectRoles: z.array(z.string().min(1).max(63)).default([]),
});
export type CutoverSpec = z.infer<typeof cutoverSpec>;
export const COPY_MODES = ['recheck', 'lock'] as const;
export type CopyMode = (typeof COPY_MODES)[number];
export const STRATEGIES = ['copy', 'attach'] as const;
export type Strategy = (typeof STRATEGIES)[number];
/** The copy's mode when none is given, for the input and the copy activity alike. */
export const DEFAULT_COPY_MODE: CopyMode = 'recheck';

export const VERIFY_MODES = ['incremental', 'full'] as const;

const batchSize = z.number().int().positive().max(1_000_000);

export const throttleSpec = z.strictObject({
  /** Pause after each batch of a copy stream. */
  pauseMs: bounds.pauseMs.default(0),
  /** Copy streams per table (disjoint key ranges copied at once). */
  parallelism: bounds.parallelism.default(2),
  /**
   * The brake: before each batch, a copy stream pauses `brakePauseMs` while any bound is
   * exceeded (its last batch took longer than `maxBatchMs`, a session of the database has waited
   * on a lock longer than `maxLockWaitMs`, or a replica lags more than `maxReplicationLagMs`).
   * Unset bounds are not checked.
   */
  maxBatchMs: bounds.maxBatchMs.optional(),
  maxLockWaitMs: bounds.maxLockWaitMs.optional(),
  maxReplicationLagMs: bounds.maxReplicationLagMs.optional(),
  brakePauseMs: bounds.brakePauseMs.default(500),
  /**
   * The adaptive throttle (activities/pacer.ts): between batches each stream times a tiny
   * committed transaction against its time before the copy; over twice that, the copy slows
   * down and drops to one stream until it is back under. Off: only the bounds above apply.
   */
  adaptive: z.boolean().default(true),
});
export type Throttle = z.infer<typeof throttleSpec>;

export const switchoverInput = z
  .strictObject({
    tables: z.array(tableSpec).min(1, 'must list at least one table'),
    schema: identifier.default('public'),
    database: TARGET.default('default'),
    batchSize: batchSize.default(10000),
    dryRun: z.boolean().default(false),
    mode: z.enum(['switchover', 'cleanup']).default('switchover'),
    approval: approvalSpec.default(() => approvalSpec.parse({})),
    backup: z.enum(['table', 'none']).default('table'),
    /** Partitions created beyond the current date, so inserts dated in the coming periods work. */
    premake: z.number().int().min(1).max(1000).default(6),
    /** Also create a DEFAULT partition that catches rows outside every range. */
    defaultPartition: z.boolean().default(false),
    throttle: throttleSpec.default(() => throttleSpec.parse({})),
    /**
     * How the copy closes its race with concurrent writers: "recheck" copies without row locks,
     * then compares each key range by hash and repairs differing rows under a row lock (fast);
     * "lock" takes FOR SHARE on every batch's rows (slower: it writes every legacy tuple).
     */
    copyMode: z.enum(COPY_MODES).default(DEFAULT_COPY_MODE),
    /**
     * Verification before approval: "incremental" counts both tables in one snapshot and compares,
     * row by row, every row written through the dual-write trigger since it came (the copy wrote
     * the others in one statement each), and compares every row when a write may have passed the
     * trigger (it was disabled or replaced since install, or a statement wrote the partitioned
     * copy itself); "full" hashes every row of both tables always (slower).
     */
    verify: z.enum(VERIFY_MODES).default('incremental'),
    /** Cutover: lock_timeout per attempt; attempts are retried with backoff by Temporal. */
    lockTimeoutMs: lockTimeoutSpec,
    cutover: cutoverSpec.default(() => cutoverSpec.parse({})),
    /**
     * "copy": a partitioned copy filled while dual writes keep it equal (twice the disk);
     * "attach": zero-copy, the table itself becomes the partition of everything before a cutoff
     * (activities/attach.ts).
     */
    strategy: z.enum(STRATEGIES).default('copy'),
  })
  .superRefine((v, ctx) => {
    const seen = new Set<string>();
    v.tables.forEach((t, i) => {
      if (seen.has(t.table)) {
        ctx.addIssue({ code: 'custom', path: ['tables', i, 'table'], message: `table "${t.table}" is listed twice` });
      }
      seen.add(t.table);
    });
  });

export type SwitchoverInput = z.infer<typeof switchoverInput>;

/** The `retune` update: new copy settings for a running switchover; a brake bound given as null is cleared. */
export const retuneSpec = z
  .strictObject({
    by: z.string().min(1, 'must name who retunes'),
    batchSize: batchSize.optional(),
    parallelism: bounds.parallelism.optional(),
    pauseMs: bounds.pauseMs.optional(),
    maxBatchMs: bounds.maxBatchMs.nullable().optional(),
    maxLockWaitMs: bounds.maxLockWaitMs.nullable().optional(),
    maxReplicationLagMs: bounds.maxReplicationLagMs.nullable().optional(),
    brakePauseMs: bounds.brakePauseMs.optional(),
    adaptive: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).some((k) => k !== 'by'), {
    message: 'give at least one of batchSize, parallelism, pauseMs, maxBatchMs, maxLockWaitMs, maxReplicationLagMs, brakePauseMs, adaptive',
  });
export type Retune = z.infer<typeof retuneSpec>;
export type SwitchoverInputRaw = z.input<typeof switchoverInput>;

export const rollbackInput = z
  .strictObject({
    switchoverWorkflowId: z.string().min(1).optional(),
    tables: z.array(tableSpec).min(1).optional(),
    schema: identifier.default('public'),
    database: TARGET.default('default'),
    /** Also restore each table's rows from its backup table (only when one exists). */
    restoreBackup: z.boolean().default(false),
  })
  .refine((v) => v.switchoverWorkflowId || v.tables, {
    message: 'give either switchoverWorkflowId or tables',
    path: ['switchoverWorkflowId'],
  });
export type RollbackInput = z.infer<typeof rollbackInput>;

/** The rehearsal load's op kinds (src/tableload.ts LOAD_KINDS; a test pins them equal: tableload.ts does I/O, so not imported here). */
export const LOAD_OP_KINDS = ['insert', 'update', 'move', 'delete'] as const;

/** The rehearsal (workflows/rehearsal/): the switchover input for a staging target, plus what to test. */
export const rehearsalInput = switchoverInput
  .safeExtend({
    /** The staging target; never `default` nor a database on its server (the worker also refuses a target with the same URL). */
    database: TARGET.refine(
      (d) => d.split('/')[0] !== 'default',
      'must name a staging target, not "default" (the production target) or a database on its server',
    ),
    /** Statements the application runs; checked before and after cutover. Default: a built-in set per table. */
    smokeSql: z.array(z.string().trim().min(1)).min(1).max(100).optional(),
    /** The load generator (src/tableload.ts) on the input's tables during the switchover; `durationMs` is how long it keeps writing after cutover. */
    load: z
      .strictObject({
        ratePerSec: z.number().positive().max(100000),
        durationMs: z.number().int().min(0).max(3_600_000).default(5000),
        concurrency: z.number().int().min(1).max(64).default(4),
        mix: z.partialRecord(z.enum(LOAD_OP_KINDS), z.number().min(0)).optional(),
      })
      .optional(),
    /** Production row counts to forecast for, or the target to read them from (read only). Default: staging's own. */
    forecast: z
      .union([z.strictObject({ database: identifier }), z.strictObject({ rows: z.record(identifier, z.number().int().min(0)).optional() })], {
        message: 'must be {"database": "<target>"} or {"rows": {"<table>": <rows>}}',
      })
      .optional(),
  })
  .superRefine((v, ctx) => {
    // The rehearsal drives the switchover itself: a dry run or cleanup would rehearse nothing.
    if (v.dryRun) ctx.addIssue({ code: 'custom', path: ['dryRun'], message: 'a rehearsal always runs the switchover on staging; remove dryRun' });
    if (v.mode !== 'switchover') ctx.addIssue({ code: 'custom', path: ['mode'], message: 'a rehearsal runs mode "switchover" only' });
  });
export type RehearsalInput = z.infer<typeof rehearsalInput>;

/** Cleanup of finished switchovers (workflow type `cleanup`): the tables by name, or as in a switchover's input. */
export const cleanupInput = z.strictObject({
  tables: z.array(z.union([identifier, z.object({ table: identifier })])).min(1),
  database: TARGET.default('default'),
  schema: identifier.default('public'),
});

/** `keep` of retention: a count and a unit (README "Retention: old partitions detached or dropped"). */
export const KEEP_PATTERN = /^([1-9]\d{0,4}) (day|week|month|year)s?$/;
export const RETENTION_ACTIONS = ['detach', 'drop'] as const;
/** Retention (activities/retention.ts): partitions wholly older than `keep` detached into `archiveSchema`, or dropped. */
export const retentionSpec = z.strictObject({
  keep: z.string().trim().regex(KEEP_PATTERN, 'must be a count and a unit, e.g. "7 years", "18 months", "12 weeks", "90 days" (days, weeks, months, years)'),
  action: z.enum(RETENTION_ACTIONS).default('detach'),
  archiveSchema: identifier.default('archive'),
});
export type Retention = z.infer<typeof retentionSpec>;

/** Partition maintenance (workflows/maintenance.ts), run on a Temporal Schedule. */
export const maintenanceInput = z.strictObject({
  database: TARGET.default('default'),
  schema: identifier.default('public'),
  /** Only these switched-over tables; default: every table a switchover cut over in `schema`. */
  tables: z.array(identifier).min(1).optional(),
  /** Partitions kept ready beyond the current period. */
  premake: z.number().int().min(1).max(1000).default(6),
  /** Also make `<table>_default`, which catches rows outside every range. */
  defaultPartition: z.boolean().default(false),
  lockTimeoutMs: lockTimeoutSpec,
  /** Old partitions detached into an archive schema, or dropped (off unless given). */
  retention: retentionSpec.optional(),
  /** Retention only lists what it would detach or drop; nothing is changed (partitions are not made either). */
  dryRun: z.boolean().default(false),
});
export type MaintenanceInput = z.infer<typeof maintenanceInput>;

/** The history split (workflows/split-history.ts, README "Splitting the history partition") of a table an attach switchover cut over. */
export const splitHistoryInput = z.strictObject({
  database: identifier.default('default'),
  schema: identifier.default('public'),
  table: identifier,
  /** Rows per copy batch (one short transaction each). */
  batchSize: batchSize.default(10000),
  /** Pause after each batch. */
  pauseMs: bounds.pauseMs.default(0),
  /** The copy's adaptive throttle (activities/pacer.ts). */
  adaptive: z.boolean().default(true),
  lockTimeoutMs: lockTimeoutSpec,
  /** Retention (as maintainPartitions'), run on the table once the periods came out. */
  retention: retentionSpec.optional(),
  /** Only the plan: the periods, names and what the period tables get; nothing is changed. */
  dryRun: z.boolean().default(false),
  /** "split" (default); "rollback" puts the history partition back from wherever the split stands; "cleanup" drops `<table>_history_legacy`. */
  mode: z.enum(['split', 'rollback', 'cleanup']).default('split'),
});
export type SplitHistoryInput = z.infer<typeof splitHistoryInput>;

/** Formats a zod error so its message names each offending field, e.g. `tables.0.interval: ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(input)'}: ${i.message}`).join('; ');
}
