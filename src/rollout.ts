// The fleet (workflows/fleet.ts): its input, and the rollout's pure rules: groups (canary, then
// waves), who may start now (concurrency, perServer), counts per phase. No I/O: workflows import it.
import { z } from 'zod';
import { DURATION } from './durations';
import { approvalSpec, switchoverInput, TARGET } from './input';
import type { Phase } from './status';

const duration = z.string().regex(DURATION, 'must be a duration like "90s", "30m", "24h" or "2d"');
const plainName = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `databases`: target names (`default`, or `<name>` for DATABASE_URL_<NAME>); `server` + `like`: the server's databases matching a LIKE pattern. */
export const fleetTargetsSpec = z.union(
  [
    z.strictObject({ databases: z.array(TARGET).min(1, 'must list at least one database') }),
    z.strictObject({ server: z.string().regex(plainName, 'must be a database target name, e.g. "default"'), like: z.string().min(1).max(200) }),
  ],
  { message: 'must be {"databases": ["a", "b"]} or {"server": "default", "like": "tenant_%"}' },
);

export const rolloutSpec = z.strictObject({
  /** Databases that go all the way through cutover first (the first listed; with `like`, the first by name). */
  canary: z.number().int().min(1).max(100).default(1),
  /** After the canary's cutover: wait this long, then check its writes still land and its rows equal `<table>_legacy`. */
  soak: duration.default('0s'),
  waveSize: z.number().int().min(1).max(10000).default(4),
  /** Switchovers working at once (one parked at approval does not count). */
  concurrency: z.number().int().min(1).max(1000).default(3),
  /** Switchovers working at once on one PostgreSQL server (grouped by system_identifier). */
  perServer: z.number().int().min(1).max(1000).default(2),
  /** Continue-as-new between waves once the history has this many events (keeps each run's history bounded). */
  historyLimit: z.number().int().min(10).max(40000).default(4000),
});
export type Rollout = z.infer<typeof rolloutSpec>;

export const APPROVAL_SCOPES = ['database', 'wave', 'fleet'] as const;
export type ApprovalScope = (typeof APPROVAL_SCOPES)[number];

/** The fleet's approval: the switchover's, plus who approves what (README "A fleet"). */
export const fleetApprovalSpec = approvalSpec.safeExtend({ scope: z.enum(APPROVAL_SCOPES).default('database') });

export const fleetInput = switchoverInput
  .safeExtend({
    mode: z.literal('switchover', { message: 'a fleet runs mode "switchover" only (cleanup: run cleanup per database)' }).default('switchover'),
    targets: fleetTargetsSpec,
    rollout: rolloutSpec.default(() => rolloutSpec.parse({})),
    approval: fleetApprovalSpec.default(() => fleetApprovalSpec.parse({})),
    onFailure: z.enum(['halt', 'continue']).default('halt'),
  })
  .superRefine((v, ctx) => {
    if (v.database !== 'default') ctx.addIssue({ code: 'custom', path: ['database'], message: 'a fleet names its databases in "targets", not "database"' });
    if ('databases' in v.targets) {
      const seen = new Set<string>();
      v.targets.databases.forEach((d, i) => {
        if (seen.has(d)) ctx.addIssue({ code: 'custom', path: ['targets', 'databases', i], message: `database "${d}" is listed twice` });
        seen.add(d);
      });
    }
    if (v.approval.scope !== 'database' && !v.approval.required) {
      ctx.addIssue({ code: 'custom', path: ['approval', 'scope'], message: `scope "${v.approval.scope}" needs approval.required true` });
    }
  });
export type FleetInput = z.infer<typeof fleetInput>;

/** One database of the fleet: its name in the fleet (child id suffix), the target its switchover uses, its server. */
export interface FleetTarget {
  name: string;
  database: string;
  /** The server's system_identifier: targets on one server share it (perServer). */
  server: string;
}

/** A database's state in the fleet: the switchover's phase, and once it ended, its outcome. */
export interface FleetDatabase {
  phase: Phase | 'pending' | 'skipped';
  outcome?: 'done' | 'dry_run' | 'rejected' | 'timed_out' | 'failed' | 'skipped' | 'not_started' | 'rolled_back';
  error?: string;
  rows?: number;
  cutoverLockMs?: number;
  /** Set once this database's switchover ran to done: the order of cutovers (abort rolls back newest first). */
  doneOrder?: number;
}

export const FLEET_PHASES = ['starting', 'canary', 'soak', 'rolling_out', 'awaiting_approval', 'halted', 'aborting', 'done', 'aborted', 'rejected'] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];

export interface FleetStatus {
  phase: FleetPhase;
  databases: Record<string, FleetDatabase>;
  counts: Record<string, number>;
  /** The group now rolling out: 0 is the canary, then waves 1, 2, ... */
  group: number;
  groups: number;
  /** A wave or fleet approval the fleet waits for (scopes wave and fleet); `rest`: scope fleet's one approval of everything after the canary. */
  gate?: { group: number; state: 'waiting' | 'approved' | 'rejected'; by?: string; at?: string; rest?: boolean };
  /** Why the fleet halted: the databases that failed and wait for resume, skip or abort. */
  halted?: { databases: string[]; since: string };
  soak?: { until?: string; ok?: boolean; detail?: string };
  ignoredSignals: string[];
}

export interface FleetChildPhase {
  database: string;
  phase: Phase;
}
export interface FleetRequest {
  by?: string;
  reason?: string;
}
export interface FleetSkipRequest extends FleetRequest {
  database: string;
}

export interface FleetReport {
  workflowId: string;
  outcome: 'done' | 'aborted' | 'rejected' | 'dry_run';
  databases: Record<string, FleetDatabase>;
  counts: Record<string, number>;
  runs: number;
}

/** The canary (the first `canary` targets), then waves of `waveSize`. */
export function rolloutGroups(names: string[], rollout: Pick<Rollout, 'canary' | 'waveSize'>): string[][] {
  const groups = [names.slice(0, rollout.canary)];
  for (let i = rollout.canary; i < names.length; i += rollout.waveSize) groups.push(names.slice(i, i + rollout.waveSize));
  return groups.filter((g) => g.length);
}

/** Phases in which a started switchover is parked (waits for a person): it holds no slot. */
export const PARKED: readonly string[] = ['awaiting_approval', 'awaiting_window'];

/** Whether `target` may start now: fewer than `concurrency` switchovers working overall and fewer than `perServer` on its server. */
export function mayStart(target: FleetTarget, working: FleetTarget[], rollout: Pick<Rollout, 'concurrency' | 'perServer'>): boolean {
  if (working.length >= rollout.concurrency) return false;
  return working.filter((w) => w.server === target.server).length < rollout.perServer;
}

/** Databases per phase (an ended database counts under its outcome). */
export function countPhases(dbs: Record<string, FleetDatabase>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const d of Object.values(dbs)) {
    const k = d.outcome ?? d.phase;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

/** The child switchover's workflow id: `<fleet workflow id>.<database>`. */
export function childId(fleetId: string, name: string): string {
  return `${fleetId}.${name}`;
}

/** The fleet database a switchover reports to, from its id and its parent's, or null when it is not a fleet's child. */
export function fleetDatabaseOf(workflowId: string, parentId: string | undefined): string | null {
  if (!parentId || !workflowId.startsWith(`${parentId}.`)) return null;
  return workflowId.slice(parentId.length + 1);
}
