// CPU and WAL per stage for the benchmark's report (issue 23 item 4): a sampler reads, every
// 100 ms, the machine's busy CPU (/proc/stat), the CPU of every postgres process and of the worker
// (/proc/<pid>/stat), and the server's WAL position; perStage() reads the counters at each stage's
// start and end (linear between samples) and gives what the stage used.
import { readFileSync, readdirSync } from 'node:fs';
import type pg from 'pg';

export interface Sample {
  t: number;
  /** Seconds of CPU, cumulative: the machine (every core, not idle nor iowait), postgres processes, the worker. */
  busy: number;
  postgres: number;
  worker: number;
  /** Bytes, cumulative (pg_current_wal_lsn − 0/0). */
  wal: number;
}

export interface StageUse {
  stage: string;
  seconds: number;
  busyCpuSeconds: number;
  postgresCpuSeconds: number;
  workerCpuSeconds: number;
  walMb: number;
}

const HZ = 100;

function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3] - f[4]) / HZ;
}

/** utime + stime of a process in seconds, and its command name; null once it is gone. */
function processCpu(pid: number): { comm: string; cpu: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const rest = s.slice(close + 2).split(' ');
    return { comm: s.slice(s.indexOf('(') + 1, close), cpu: (Number(rest[11]) + Number(rest[12])) / HZ };
  } catch {
    return null;
  }
}

/** Postgres processes' CPU: a backend that exits takes its seconds with it, so each pid's last reading is kept. */
function postgresCpu(seen: Map<number, number>): number {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = processCpu(Number(name));
    if (p?.comm === 'postgres') seen.set(Number(name), p.cpu);
  }
  let sum = 0;
  for (const v of seen.values()) sum += v;
  return sum;
}

/** Samples every `everyMs` until stop(); `c` is a connection of its own. */
export function startSampler(c: pg.Client, workerPid: number, everyMs = 100): { stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  const seen = new Map<number, number>();
  let busy = false;
  const take = async () => {
    if (busy) return;
    busy = true;
    try {
      const wal = Number((await c.query(`select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint as b`)).rows[0].b);
      samples.push({ t: Date.now(), busy: machineBusy(), postgres: postgresCpu(seen), worker: processCpu(workerPid)?.cpu ?? 0, wal });
    } catch {
      // A sample missed; the next one counts from there.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void take(), everyMs);
  void take();
  return {
    async stop() {
      clearInterval(timer);
      await take();
      return samples;
    },
  };
}

/** A counter at time t, linear between the samples around it (clamped at the ends). */
export function at(samples: Sample[], t: number, key: keyof Omit<Sample, 't'>): number {
  if (!samples.length) return NaN;
  if (t <= samples[0].t) return samples[0][key];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (t <= b.t) return a[key] + ((b[key] - a[key]) * (t - a.t)) / Math.max(1, b.t - a.t);
  }
  return samples[samples.length - 1][key];
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** What each window [start, end) (epoch ms) used. */
export function perStage(samples: Sample[], windows: { stage: string; start: number; end: number }[]): StageUse[] {
  const d = (w: { start: number; end: number }, k: keyof Omit<Sample, 't'>) => at(samples, w.end, k) - at(samples, w.start, k);
  return windows.map((w) => ({
    stage: w.stage,
    seconds: r2((w.end - w.start) / 1000),
    busyCpuSeconds: r2(d(w, 'busy')),
    postgresCpuSeconds: r2(d(w, 'postgres')),
    workerCpuSeconds: r2(d(w, 'worker')),
    walMb: r2(d(w, 'wal') / 1e6),
  }));
}
