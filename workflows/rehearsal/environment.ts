// Phase 1: the staging target's version, disk, transactions, timeouts and permissions.
import type { PhaseOutcome } from '../../src/rehearsal-report';
import { opts } from '../options';
import { acts, type Ctx } from './staging';

export async function environment(ctx: Ctx): Promise<PhaseOutcome> {
  const { database, schema, tables, backup } = ctx.input;
  return acts.rehearsalEnvironment.executeWithOptions(opts(`environment of ${database}: version, disk, transactions, timeouts, permissions`), [
    { database, schema, tables: tables.map((t) => t.table), backup },
  ]);
}
