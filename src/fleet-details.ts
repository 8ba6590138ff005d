// The fleet's current details (the UI's "Current details", `temporal workflow describe`): phase,
// a progress bar of databases, what it waits for, and a table of databases. Pure.
import type { FleetStatus } from './rollout';

const ENDED = ['done', 'dry_run', 'rejected', 'timed_out', 'failed', 'skipped', 'not_started', 'rolled_back'];

/** `[########------------] 8/20`. */
export function progressBar(done: number, total: number, width = 20): string {
  const filled = total ? Math.round((done / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total}`;
}

function waitingFor(s: FleetStatus, workflowId: string): string[] {
  const lines: string[] = [];
  if (s.halted) {
    lines.push(
      `**Halted** since ${s.halted.since}: ${s.halted.databases.join(', ')} failed. ` +
        `Fix the cause, then \`temporal workflow update execute --workflow-id ${workflowId} --name resume --input '{"by":"you"}'\`, ` +
        `or \`--name skip --input '{"database":"<name>"}'\`, or \`--name abort\` (rolls back every database the fleet switched over).`,
    );
  }
  if (s.gate?.state === 'waiting') {
    const what = s.gate.rest ? 'everything after the canary' : s.gate.group === 0 ? 'the canary' : `wave ${s.gate.group}`;
    lines.push(
      `**Waiting for approval** of ${what}: \`temporal workflow update execute --workflow-id ${workflowId} --name approve --input '{"by":"you"}'\` (or reject).`,
    );
  }
  if (s.soak?.until && s.soak.ok === undefined) lines.push(`Soaking the canary until ${s.soak.until}.`);
  if (s.soak?.ok === false) lines.push(`**Soak check failed**: ${s.soak.detail}`);
  return lines;
}

export function renderFleetDetails(s: FleetStatus, info: { workflowId: string }): string {
  const names = Object.keys(s.databases);
  const ended = names.filter((n) => ENDED.includes(s.databases[n].outcome ?? ''));
  const counts = Object.entries(s.counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const rows = names.map((n) => {
    const d = s.databases[n];
    const lock = d.cutoverLockMs === undefined ? '' : `${Math.round(d.cutoverLockMs * 10) / 10} ms`;
    const outcome = d.outcome ? `${d.outcome}${d.error ? `: ${d.error.slice(0, 120).replace(/\|/g, '/')}` : ''}` : '';
    return `| ${n} | ${d.phase} | ${d.rows ?? ''} | ${lock} | ${outcome} |`;
  });
  return [
    `## Fleet ${info.workflowId}: ${s.phase}`,
    '',
    `${progressBar(ended.length, names.length)} databases ended; group ${s.group} of ${s.groups - 1} (0 is the canary). ${counts}`,
    '',
    ...waitingFor(s, info.workflowId),
    '',
    '| database | phase | rows | cutover lock | outcome |',
    '|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
