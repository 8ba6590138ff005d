// Where the project's Temporal CLI is. Without one (no Go, no cache), the SDK's own download of
// the dev server is used instead, which works on machines with internet access.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const TEMPORAL_SCRIPT = join(__dirname, '..', 'scripts', 'temporal.sh');

/** Path of the provisioned CLI, building it if needed; undefined when it cannot be built here. */
export function temporalCliPath(build = true): string | undefined {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  try {
    const out = execFileSync('bash', [TEMPORAL_SCRIPT, '--ensure'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: build ? process.env : { ...process.env, PATH: '' },
    });
    return out.toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `server` options for TestWorkflowEnvironment.createLocal: our binary, or the SDK download. */
export function devServerExecutable(): { type: 'existing-path'; path: string } | undefined {
  const path = temporalCliPath();
  return path ? { type: 'existing-path', path } : undefined;
}
