// The markdown an operator reads in the UI's "User Metadata" tab and `temporal workflow metadata`.
// Pure: the workflow renders it from its own state.
import type { SwitchoverStatus } from './status';
import { CUTOFF_MARGIN_MS, cutoffDeadlineMs, humanDuration } from './cutoff';

const n = (x: number) => x.toLocaleString('en-US');

function eta(seconds: number | null): string {
  if (seconds === null) return '–';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}

export function renderDetails(s: SwitchoverStatus, ctx: { workflowId: string; namespace: string }): string {
  const lines: string[] = [`## Switchover: ${s.phase}${s.dryRun ? ' (dry run)' : ''}`, '', `Tables: ${s.tables.join(', ')}`, ''];
  // Attach, until cutover: when the application's writes reach each cutoff (the status query has the time left).
  const open = ['done', 'rolled_back', 'failed', 'cleanup'].includes(s.phase) ? [] : (s.plan?.tables ?? []).filter((tp) => !s.cutover[tp.table]);
  const cutoffs = open.flatMap((tp) => (tp.attach ? [{ table: tp.table, attach: tp.attach }] : []));
  for (const tp of cutoffs) {
    lines.push(
      `Attach cutoff of ${tp.table}: ${tp.attach.cutoff}; the application's writes reach it at ${new Date(cutoffDeadlineMs(tp.attach)).toISOString()}, ` +
        `and the switchover stops (and rolls back) ${humanDuration(CUTOFF_MARGIN_MS)} before that if it has not cut over`,
    );
  }
  if (cutoffs.length) lines.push('');
  progressSection(s, lines);
  const ns = ctx.namespace === 'default' ? '' : ` --namespace ${ctx.namespace}`;
  pausedSection(s, ns, ctx, lines);
  const changes = s.throttle?.changes ?? [];
  if (changes.length) lines.push('Operator changes (latest last):', '', ...changes.slice(-5).map((c) => `- ${c.at} ${c.by}: ${c.what}`), '');
  const notes = (s.plan?.tables ?? []).flatMap((tp) => tp.warnings.map((w) => `- ${tp.table}: ${w}`));
  if (notes.length && ['preflight', 'backup', 'prepare', 'triggers', 'copy', 'verify', 'awaiting_approval'].includes(s.phase)) {
    lines.push('### Plan notes (read before approving)', '', ...notes, '');
  }
  verificationSection(s, lines);
  approvalSection(s, ns, ctx, lines);
  windowSection(s, ns, ctx, lines);
  const cut = Object.values(s.cutover);
  if (cut.length) lines.push(`Cutover lock held: ${cut.map((c) => `${c.table} ${c.lockMs.toFixed(1)} ms`).join(', ')}`, '');
  if (s.rollback) lines.push(`Rollback ${s.rollback.workflowId}: ${s.rollback.state}${s.rollback.message ? ` (${s.rollback.message})` : ''}`, '');
  if (s.error) lines.push(`**Error:** ${s.error}`, '');
  return lines.join('\n');
}

/** The copy's progress per table, who is braking, and the throttle in force. */
function progressSection(s: SwitchoverStatus, lines: string[]): void {
  const progress = Object.values(s.progress);
  if (progress.length) {
    lines.push('| table | rows copied | estimated | rows/s | ETA |', '|---|---:|---:|---:|---:|');
    for (const p of progress) {
      lines.push(`| ${p.table} | ${n(p.rowsCopied)} | ${n(p.rowsEstimated)} | ${n(p.rowsPerSec)} | ${eta(p.etaSeconds)} |`);
    }
    const braking = progress.filter((p) => p.brake);
    if (braking.length) lines.push('', ...braking.map((p) => `Braking ${p.table}: ${p.brake}`));
    throttleLines(s, progress, lines);
    lines.push('');
  }
}

/** The throttle's settings and the brake's slowdowns so far. */
function throttleLines(s: SwitchoverStatus, progress: SwitchoverStatus['progress'][string][], lines: string[]): void {
  const t = s.throttle;
  if (t) {
    const bounds = [
      t.maxBatchMs !== undefined ? `batch > ${t.maxBatchMs} ms` : null,
      t.maxLockWaitMs !== undefined ? `lock wait > ${t.maxLockWaitMs} ms` : null,
      t.maxReplicationLagMs !== undefined ? `replication lag > ${t.maxReplicationLagMs} ms` : null,
    ].filter(Boolean);
    const brakes = progress.reduce((a, p) => a + (p.brakes ?? 0), 0);
    lines.push(
      '',
      `Throttle: copy mode ${t.copyMode}, ${t.batchSize !== undefined ? `batches of ${n(t.batchSize)} rows, ` : ''}${t.parallelism} streams, pause ${t.pauseMs} ms per batch; brake ` +
        (bounds.length ? `${bounds.join(', ')} (pauses ${t.brakePauseMs} ms)` : 'off') +
        `; adaptive ${t.adaptive ? 'on (slows down, then one stream, while a probe commit takes over twice its time before the copy)' : 'off'}; ${brakes} slowdowns so far`,
    );
  }
}

/** Paused by an operator: who, why, and the command that resumes. */
function pausedSection(s: SwitchoverStatus, ns: string, ctx: { workflowId: string }, lines: string[]): void {
  if (s.throttle?.paused) {
    const p = s.throttle.paused;
    lines.push(
      `**Paused by ${p.by}: ${p.reason}** (since ${p.at}; no copy batch and no next stage runs). Resume:`,
      '```',
      `temporal workflow update execute${ns} --workflow-id ${ctx.workflowId} \\`,
      `  --name resume --input '{"by":"<you>"}'`,
      '```',
      '',
    );
  }
}

/** The verification's result per table. */
function verificationSection(s: SwitchoverStatus, lines: string[]): void {
  if (s.verification) {
    lines.push(`### Verification: ${s.verification.ok ? 'PASSED' : 'FAILED'}`, '');
    const incremental = s.verification.tables.filter((t) => t.mode === 'incremental').map((t) => t.table);
    if (incremental.length) {
      lines.push(
        `Incremental (${incremental.join(', ')}): row counts of both tables in one snapshot, and every row written during the switchover ` +
          `compared row by row (row hash over those rows); the other rows were copied by one statement each and not written since. ` +
          `Writes that could pass the triggers are watched instead of searched for: the dual-write trigger fires for replica sessions too, ` +
          `a trigger disabled or replaced since install and any statement on the partitioned copy itself are recorded, and then every row is compared.`,
        '',
      );
    }
    for (const t of s.verification.tables.filter((x) => x.escalated)) {
      lines.push(`Every row of ${t.table} compared, because ${t.escalated!.join('; ')}.`, '');
    }
    lines.push('| table | legacy rows | partitioned rows | sums (legacy = partitioned) | row hash | result |', '|---|---:|---:|---|---|---|');
    for (const t of s.verification.tables) {
      const sums =
        t.mode === 'incremental'
          ? 'not summed (incremental)'
          : Object.keys(t.legacy.sums)
              .map((c) => `${c}: ${t.legacy.sums[c]}${t.legacy.sums[c] === t.partitioned.sums[c] ? '' : ` ≠ ${t.partitioned.sums[c]}`}`)
              .join('<br>');
      const hash =
        (t.legacy.rowHash === t.partitioned.rowHash ? t.legacy.rowHash : `${t.legacy.rowHash} ≠ ${t.partitioned.rowHash}`) +
        (t.mode === 'incremental' ? ` (${n(t.keysChecked ?? 0)} written rows)` : '');
      const result = t.ok ? 'ok' : `MISMATCH in ${t.mismatches.map((m) => m.range).join(', ')}; ids ${t.sampleIds.join(' ')}`;
      lines.push(`| ${t.table} | ${n(t.legacy.rows)} | ${n(t.partitioned.rows)} | ${sums || '–'} | ${hash} | ${result} |`);
    }
    lines.push('');
  }
}

/** The approval: waiting (with the commands), approved or rejected. */
function approvalSection(s: SwitchoverStatus, ns: string, ctx: { workflowId: string }, lines: string[]): void {
  if (s.approval.state === 'waiting') {
    const written = Object.values(s.written ?? {});
    const statistics = Object.entries(s.statistics ?? {});
    lines.push(
      '### Waiting for approval',
      '',
      ...(statistics.length
        ? [`Statistics of the partitioned tables (ANALYZE; the cutover waits for them): ${statistics.map(([t, st]) => `${t} ${st}`).join('; ')}.`, '']
        : []),
      ...(written.length
        ? [
            `Rows written since verification, compared while waiting: ${written.map((w) => `${w.table} ${n(w.keys)} compared at ${w.at}, ${w.ok ? 'equal' : `DIFFERENT: ${w.changes.join('; ')}`}; change log ${n(w.logRows)} entries`).join('; ')}.`,
            '',
          ]
        : []),
      s.approval.approvers.length ? `Approvers: ${s.approval.approvers.join(', ')}` : 'Any operator may approve.',
      '',
      'Approve:',
      '```',
      // Two lines (a shell continuation) so the command fits the UI's details panel.
      `temporal workflow signal${ns} --workflow-id ${ctx.workflowId} \\`,
      `  --name approve --input '{"by":"<you>","comment":"verified"}'`,
      '```',
      'Reject (rolls back):',
      '```',
      `temporal workflow signal${ns} --workflow-id ${ctx.workflowId} \\`,
      `  --name reject --input '{"by":"<you>","reason":"..."}'`,
      '```',
      '',
    );
  } else if (s.approval.state === 'approved') {
    lines.push(`Approved by ${s.approval.by}${s.approval.comment ? `: ${s.approval.comment}` : ''}`, '');
  } else if (s.approval.state === 'rejected') {
    lines.push(`Rejected by ${s.approval.by}${s.approval.reason ? `: ${s.approval.reason}` : ''}`, '');
  }
}

/** Approved and waiting for the cutover window: when it opens and closes in the operator's time zone, and how to override it. */
function windowSection(s: SwitchoverStatus, ns: string, ctx: { workflowId: string }, lines: string[]): void {
  const w = s.cutoverWindow;
  if (!w || s.phase !== 'awaiting_window') return;
  lines.push(
    `### Waiting for the cutover window`,
    '',
    `Approved; the cutover waits until ${w.opensLocal} (${w.opensAt})${w.closesLocal ? `, and must get its locks before ${w.closesLocal}` : ''}.` +
      `${w.missed ? ` ${w.missed} window(s) closed before it got them.` : ''}`,
    '',
    `Cut over now (approvers): \`temporal workflow update execute --workflow-id ${ctx.workflowId}${ns} --name cutoverNow --input '{"by":"<you>"}'\``,
    '',
  );
  if (w.changes.length) lines.push(...w.changes.slice(-5).map((c) => `- ${c.at} ${c.by}: ${c.what}`), '');
}
