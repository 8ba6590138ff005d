// Plain data passed between workflow and activities (recorded in history: no secrets here).
import type { Interval, Strategy } from './input';
import type { PartitionRange } from './partitions';

export type KeyType = 'date' | 'timestamp' | 'timestamptz';

export interface ColumnInfo {
  name: string;
  /** format_type(), e.g. `bigint`, `timestamp with time zone`. */
  type: string;
  notNull: boolean;
  /** GENERATED ALWAYS AS (...) STORED: never inserted, computed on both sides. */
  generated: boolean;
  /** '' plain, 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT AS IDENTITY. */
  identity: '' | 'a' | 'd';
  /**
   * Set by preflight when the column's type has no extended hash function that the row hash
   * could use (bit, varbit, a domain over json or point...): the row hash reads it as this type
   * (`text`, exact for every type). Unset: its own type, or the cast src/sqlgen.ts knows by name.
   */
  hashAs?: string;
}

export interface IndexPlan {
  /** Index on the legacy table. */
  name: string;
  /** Name it has on the partitioned table until cutover swaps the names. */
  tempName: string;
  /** Name the legacy table's index takes at cutover (absent in plans recorded before it was planned). */
  legacyName?: string;
  /** Statement for the partitioned table: CREATE INDEX, or ADD CONSTRAINT for a unique constraint; '' for the primary key. */
  createSql: string;
  isPrimary: boolean;
  /**
   * A plain index as data (UNIQUE or not, its `USING ...` clause), rendered by createIndexSql for
   * each table it is built on. Absent for constraints, and in plans recorded before it existed.
   */
  index?: IndexShape;
}

export interface IndexShape {
  unique: boolean;
  /** `USING <method> (<columns>) [INCLUDE ...] [WITH ...] [WHERE ...]`, as pg_get_indexdef gives it. */
  using: string;
}

export interface TableNames {
  partitioned: string;
  legacy: string;
  backup: string;
  syncFunction: string;
  syncTrigger: string;
  mirrorFunction: string;
  mirrorTrigger: string;
  /** The TRUNCATE guard's function (absent from plans recorded before it existed). */
  guardFunction?: string;
  pkConstraint: string;
  pkTempConstraint: string;
  /** `<table>_default` (absent in older plans: derived from the table name). */
  defaultPartition?: string;
}

/** What every table's plan holds, whatever its strategy. */
export interface TablePlanBase {
  schema: string;
  table: string;
  partitionKey: string;
  interval: Interval;
  keyType: KeyType;
  names: TableNames;
  columns: ColumnInfo[];
  /** Columns written by copy and triggers (all but generated ones), in table order. */
  insertColumns: string[];
  primaryKey: string[];
  /** Primary key of the partitioned table: the legacy key plus the partition key. */
  partitionedKey: string[];
  /**
   * The dual-write trigger logs every key it writes (partition_switchover.changed_keys): the
   * copy's re-check and the incremental verification compare those rows only. Unset in plans
   * recorded before the log existed (their triggers do not log): both then read whole tables.
   */
  changeLog?: boolean;
  /** Set when the first key column is an integer: copy streams split its range. */
  splitColumn: string | null;
  splitRange: { min: string; max: string } | null;
  rowsEstimated: number;
  dataRange: { min: string | null; max: string | null };
  partitions: PartitionRange[];
  defaultPartition: boolean;
  sumColumns: string[];
  indexes: IndexPlan[];
  /** Sequences owned by a column of the table (serial): ownership moves at cutover. */
  sequences: { sequence: string; column: string }[];
  /** Outgoing foreign keys, re-created on the partitioned table. */
  foreignKeys: { name: string; definition: string }[];
  /** The table's ACL (aclitem text), re-granted on the partitioned table. */
  acl: string[];
  /** Column ACLs (aclitem text per column), re-granted on the partitioned table. */
  columnAcl?: { column: string; acl: string[] }[];
  /** The table's owner: the partitioned table and its partitions are given to it at prepare. */
  owner?: string;
  comment: string | null;
  /**
   * The table's storage parameters (`pg_class.reloptions`, `name=value`) and its TOAST table's:
   * each partition is made with them (src/sqlgen.ts storageSql). Absent in plans before them.
   */
  storage?: { table: string[]; toast: string[] };
  warnings: string[];
  /** Which partition each range of the key goes to, and what has no home (plan lines). */
  coverage?: string[];
  // What the table carries beyond columns and indexes (src/carrysql.ts renders it). Optional, so
  // plans recorded before these existed still load for a rollback.
  /** Identity columns: re-created on the partitioned table at cutover, continuing the sequence. */
  identities?: IdentityPlan[];
  /** Views reading the table: re-pointed at the partitioned table at cutover, and back at rollback. */
  views?: { name: string; createSql: string }[];
  /** Materialized views reading the table: built again over the partitioned table, swapped in at cutover (activities/matviews.ts). */
  matviews?: MatviewPlan[];
  /** CREATE POLICY statements for the partitioned table (run at prepare, inert until RLS is on). */
  policies?: string[];
  /** Row-level security flags, set on the partitioned table at cutover. */
  rowSecurity?: { enabled: boolean; forced: boolean };
  /** The application's own triggers: made on the partitioned table at cutover, off on the legacy one. */
  triggers?: { name: string; createSql: string; enabled: string }[];
  /**
   * Publications naming the table (FOR TABLE), with their column list and row filter: the
   * partitioned table takes its place in each at cutover (they all publish via the partition
   * root, so subscribers keep seeing the table's own name), the plain one again at rollback.
   */
  publications?: PublicationPlan[];
  /**
   * The table's NOT VALID CHECK and foreign key constraints, which preflight found no row to
   * violate: the partitioned table has them validated (a partitioned table cannot take a NOT
   * VALID foreign key, nor attach a partition whose CHECK is not valid); the attach strategy
   * validates them on the table itself before cutover.
   */
  notValid?: { name: string; type: 'c' | 'f' }[];
  /** Foreign keys of other tables referencing this one, carried through a key table (copy strategy; activities/keytable.ts). */
  keyTable?: KeyTablePlan;
}

/** `<table>_keys`: the table's keys, which the referencing foreign keys point at from cutover on (src/keytablesql.ts). */
export interface KeyTablePlan {
  table: string;
  /** Its trigger function (the triggers on the partitioned table go with it). */
  fn: string;
  /** The primary key's columns and types. */
  columns: { name: string; type: string }[];
  foreignKeys: IncomingForeignKey[];
}

/** A foreign key of another table referencing this one, as preflight found it. */
export interface IncomingForeignKey {
  name: string;
  /** The referencing table. */
  schema: string;
  table: string;
  /** pg_get_constraintdef with search_path = pg_catalog (names schema-qualified), without NOT VALID. */
  definition: string;
  /** Its target as that text names it (`public.rental`). */
  target: string;
  /** Whether it was validated: validated again after each re-pointing. */
  validated: boolean;
}

/** The copy strategy (the default): the rows are copied into `<table>_partitioned`, which takes the table's name at cutover. */
export interface CopyTablePlan extends TablePlanBase {
  attach?: undefined;
}

/** The attach strategy: the table itself becomes the partition of everything before the cutoff (no copy). */
export interface AttachTablePlan extends TablePlanBase {
  attach: AttachPlan;
}

/**
 * A table's plan, by strategy. A recorded plan says its strategy by `attach` (plans recorded
 * before strategies had names load as they are): `if (tp.attach)` narrows to AttachTablePlan.
 */
export type TablePlan = CopyTablePlan | AttachTablePlan;

/** A strategy's name, as the input gives it. */
export type StrategyName = Strategy;

/** One publication's membership of the table, as pg_publication_rel records it. */
export interface PublicationPlan {
  name: string;
  /** Column list (PostgreSQL 15), null for every column. */
  columns: string[] | null;
  /** Row filter (pg_get_expr text, schema-qualified), null for none. */
  rowFilter: string | null;
}

/** The zero-copy switchover of one table (src/attachsql.ts renders it, activities/attach.ts runs it). */
export interface AttachPlan {
  /** First day not in the history partition (a period boundary), YYYY-MM-DD. */
  cutoff: string;
  /** How far ahead of today the table's newest row was at preflight (days; 0 if none ahead). */
  aheadDays: number;
  /** Days the cutoff leaves for the switchover itself (the approval timeout plus a day). */
  windowDays: number;
  /** Why the cutoff is where it is, for the plan. */
  why: string;
  /** The table's name once it is the history partition (same storage, renamed at cutover). */
  history: string;
  /** `CHECK (key IS NOT NULL AND key < cutoff)`, added NOT VALID, then validated; dropped at cutover. */
  check: string;
  /** Unique index on (primary key..., key), built concurrently; the history partition's primary key (historyPk) at cutover. Null when the key is in the primary key already. */
  keyIndex: string | null;
  historyPk: string;
  /** Unique index on the primary key, built concurrently; kept on the history partition (a rollback makes it the primary key again). Null as keyIndex. */
  pkIndex: string | null;
  /** Names the table's secondary indexes take on the history partition (the parent's get the original names). */
  historyIndexes: { name: string; historyName: string }[];
  /** The partitions made at cutover: the periods from the cutoff through premake, then `<table>_pmax`. */
  partitions: PartitionRange[];
  /** Disk the switchover needs: the two indexes (estimated from the primary key index). */
  diskBytes: number;
}

export interface IdentityPlan {
  column: string;
  /** 'a' GENERATED ALWAYS, 'd' BY DEFAULT. */
  kind: 'a' | 'd';
  /** The legacy table's identity sequence; the partitioned table's new one takes this name. */
  sequence: string;
  /** What the legacy table's sequence is renamed to at cutover. */
  legacySequence: string;
  /** Sequence options, e.g. `INCREMENT BY 1 MINVALUE 1 ...`. */
  options: string;
}

export interface Plan {
  schema: string;
  database: string;
  today: string;
  tables: TablePlan[];
  /** Every statement per stage and table, for the dry-run report. */
  sql: Record<string, Record<string, string[]>>;
}

export interface Checksum {
  rows: number;
  sums: Record<string, string>;
  /** sum of hash_record_extended over every row, as text (numeric). */
  rowHash: string;
}

export interface StageRecord {
  stage: string;
  table: string;
  rows: number;
  sums: Record<string, string>;
  rowHash?: string;
  ms: number;
  at: string;
}

export interface RangeMismatch {
  range: string;
  legacy: Checksum;
  partitioned: Checksum;
}

export interface TableVerification {
  table: string;
  ok: boolean;
  legacy: Checksum;
  partitioned: Checksum;
  ranges: number;
  mismatches: RangeMismatch[];
  sampleIds: string[];
  ms: number;
  /** "full": every row of both tables hashed; "incremental": counts, and the rows written during the switchover. Unset: full. */
  mode?: VerifyMode;
  /** Incremental: distinct keys the triggers logged, compared row by row. */
  keysChecked?: number;
  /** Why an incremental verification compared every row instead (writes that may have passed the triggers). */
  escalated?: string[];
}

export type VerifyMode = 'full' | 'incremental';

/** A comparison of the rows written since the last one, while approval waits (verifyWritten). */
export interface WrittenCheck {
  table: string;
  ok: boolean;
  /** Keys compared. */
  keys: number;
  /** Entries of the table left in the change log afterwards. */
  logRows: number;
  /** What differs or may have passed the triggers. */
  changes: string[];
  at: string;
}

export interface VerifyResult {
  ok: boolean;
  tables: TableVerification[];
}

export interface CopyStream {
  table: string;
  stream: number;
  /** Bounds on the split column (inclusive lo, exclusive hi); null means unbounded. */
  lo: string | null;
  hi: string | null;
}

export interface CopyProgress {
  table: string;
  stream: number;
  rowsCopied: number;
  rowsPerSec: number;
  /** Keyset position: values of the primary key of the last row copied. */
  cursor: string[] | null;
  done: boolean;
  /** Times the throttle's brake paused this stream, and why it last did (null: not braking now). */
  brakes?: number;
  brake?: string | null;
}

export interface CopyResult {
  table: string;
  stream: number;
  rowsCopied: number;
  batches: number;
  resumedFrom: string[] | null;
  ms: number;
  brakes?: number;
}

/** The copy re-check (mode "recheck"): chunks compared by hash, rows repaired under a row lock. */
export interface RecheckResult {
  table: string;
  /** Key chunks compared whole (plans without the change log); 0 when the logged keys were compared. */
  chunks: number;
  /** Keys the dual-write trigger logged, compared row by row (plans with the change log). */
  keysChecked?: number;
  rounds: number;
  repaired: number;
  waitedMs: number;
  ms: number;
}

/** A session the cutover cancelled or terminated (cutover.cancelBlockersAfter). */
export interface CancelledSession {
  pid: number;
  user: string;
  application: string;
  state: string;
  queryStart: string | null;
  /** The first 200 characters of its query. */
  query: string;
  how: 'cancel' | 'terminate';
  /** Whether the signal went out (false: not allowed to signal it). */
  signalled: boolean;
}

export interface CutoverResult {
  table: string;
  /** The cutover's statements under the lock. */
  lockMs: number;
  /** From the lock request to every lock held (the try that went through): writers queue behind it. */
  lockWaitMs?: number;
  /** From every lock held to commit: what writers wait on top of the wait. */
  lockHeldMs?: number;
  /** Relations whose autovacuum the cutover cancelled before locking. */
  cancelledAutovacuums?: string[];
  /** Sessions that held what the cutover waited for, cancelled (or terminated) under cutover.cancelBlockersAfter. */
  cancelledSessions?: CancelledSession[];
  /** Rows written since verification, compared before the lock (plans with the change log). */
  keysComparedSinceVerification?: number;
  attempts: number;
  alreadyDone: boolean;
  at: string;
}

/** A materialized view reading the table, carried (activities/matviews.ts, src/matviewsql.ts). */
export interface MatviewPlan {
  schema: string;
  name: string;
  /** Ours, built over `<table>_partitioned` before cutover; it takes `name` at cutover. */
  newName: string;
  /** The original's name from cutover to cleanup (it then reads `<table>_legacy`). */
  legacyName: string;
  owner: string;
  /** CREATE MATERIALIZED VIEW of ours (WITH NO DATA when the original is not populated). */
  createSql: string;
  populated: boolean;
  /** Its indexes: ours made under `newName`, each swapped like the view's name. */
  indexes: { name: string; newName: string; legacyName: string; createSql: string; tablespace: string | null }[];
  /** GRANTs and COMMENT of ours, run as its owner. */
  accessSql: string[];
  /** Views reading it: re-pointed (CREATE OR REPLACE VIEW) at ours after the swap, at the original after the swap back. */
  views?: { name: string; createSql: string }[];
  /** The planner's estimate of the rows a refresh reads. */
  rowsRead: number;
  /** Cheap enough to be refreshed again right before the cutover's lock (else: at build and while approval waits). */
  refreshAtCutover: boolean;
}
