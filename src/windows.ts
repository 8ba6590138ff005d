// Cutover windows (input cutover.window / cutover.notBefore): when the next window opens and
// closes, in the operator's time zone. Pure: the workflow passes its own clock (Date.now() is
// deterministic there) and reads time zones through Intl (the worker's time zone data).

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface CutoverWindow {
  /** Local wall time, "HH:MM" or "HH:MM:SS". An end at or before the start ends the next day. */
  start: string;
  end: string;
  /** IANA name, e.g. "Europe/Berlin". */
  timeZone: string;
  /** The days a window opens on (local); default every day. */
  days?: Weekday[];
}

/** When the cutover may run: from `open` (epoch ms) until `close` (Infinity: no end). */
export interface Slot {
  open: number;
  close: number;
}

const DAY_MS = 86_400_000;

/** "02:30" / "02:30:15" → seconds of the day; null when not a wall time. */
export function secondsOfDay(hhmm: string): number | null {
  const m = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$/.exec(hhmm);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0) : null;
}

/** Whether Intl knows the time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The local calendar date, weekday and wall clock of instant `t` in `tz`. */
function local(t: number, tz: string) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(t));
  const get = (k: string) => parts.find((p) => p.type === k)!.value;
  const y = Number(get('year'));
  const m = Number(get('month')) - 1;
  const d = Number(get('day'));
  const wall = Date.UTC(y, m, d, Number(get('hour')), Number(get('minute')), Number(get('second')));
  return { y, m, d, weekday: get('weekday').toLowerCase().slice(0, 3) as Weekday, offset: wall - Math.floor(t / 1000) * 1000 };
}

/** The instant local wall time `sod` seconds into day (y, m, d) happens in `tz` (a time skipped by DST: the hour after). */
function instant(y: number, m: number, d: number, sod: number, tz: string): number {
  const wall = Date.UTC(y, m, d) + sod * 1000;
  const first = wall - local(wall, tz).offset;
  return wall - local(first, tz).offset;
}

/** The window that contains `now`, or the next one. */
export function nextWindow(w: CutoverWindow, now: number): Slot {
  const start = secondsOfDay(w.start)!;
  const end = secondsOfDay(w.end)!;
  const days = new Set(w.days?.length ? w.days : WEEKDAYS);
  // From yesterday (a window over midnight may still be open), one local day after another.
  for (let k = -1; k <= 8; k++) {
    const day = local(now + k * DAY_MS, w.timeZone);
    if (!days.has(day.weekday)) continue;
    const open = instant(day.y, day.m, day.d, start, w.timeZone);
    const close = end > start ? instant(day.y, day.m, day.d, end, w.timeZone) : instant(day.y, day.m, day.d + 1, end, w.timeZone);
    if (close > now) return { open, close };
  }
  throw new Error(`no cutover window within 8 days of ${new Date(now).toISOString()}`);
}

/** When the cutover may run, from `now`: null when neither a window nor notBefore is set (at once). */
export function cutoverSlot(spec: { window?: CutoverWindow; notBefore?: string }, now: number): Slot | null {
  if (!spec.window && !spec.notBefore) return null;
  const from = Math.max(now, spec.notBefore ? Date.parse(spec.notBefore) : now);
  if (!spec.window) return { open: from, close: Infinity };
  const w = nextWindow(spec.window, from);
  return { open: Math.max(w.open, from), close: w.close };
}

/** `Tue 2026-12-08 02:00:00 Europe/Berlin` (the operator's time zone; UTC without a window). */
export function localTime(t: number, tz = 'UTC'): string {
  const l = local(t, tz);
  const wall = new Date(Math.floor(t / 1000) * 1000 + l.offset);
  const day = l.weekday[0].toUpperCase() + l.weekday.slice(1);
  return `${day} ${wall.toISOString().slice(0, 19).replace('T', ' ')} ${tz}`;
}
