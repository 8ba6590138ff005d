// Cutover windows (src/windows.ts): the next window in the operator's time zone, over midnight,
// on chosen days, across a daylight-saving change, with notBefore.
import { cutoverSlot, isTimeZone, localTime, nextWindow, secondsOfDay } from '../src/windows';

const at = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();

test('wall times and time zones', () => {
  expect(secondsOfDay('02:00')).toBe(7200);
  expect(secondsOfDay('23:59:30')).toBe(86370);
  expect(secondsOfDay('24:00')).toBeNull();
  expect(secondsOfDay('2:00')).toBeNull();
  expect(isTimeZone('Europe/Berlin')).toBe(true);
  expect(isTimeZone('Mars/Olympus')).toBe(false);
});

test('Berlin 02:00–04:00 on weekdays: before, inside, after, and over a weekend', () => {
  const w = { start: '02:00', end: '04:00', timeZone: 'Europe/Berlin', days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const };
  // Monday 2026-12-07 00:30 UTC = 01:30 in Berlin (UTC+1): today's window.
  const s = nextWindow({ ...w, days: [...w.days] }, at('2026-12-07T00:30:00Z'));
  expect([iso(s.open), iso(s.close)]).toEqual(['2026-12-07T01:00:00.000Z', '2026-12-07T03:00:00.000Z']);
  // Inside it: the same window.
  expect(iso(nextWindow({ ...w, days: [...w.days] }, at('2026-12-07T02:59:00Z')).open)).toBe('2026-12-07T01:00:00.000Z');
  // Friday after it: Monday's.
  expect(iso(nextWindow({ ...w, days: [...w.days] }, at('2026-12-11T05:00:00Z')).open)).toBe('2026-12-14T01:00:00.000Z');
});

test('a window over midnight, still open after midnight', () => {
  const w = { start: '22:00', end: '01:00', timeZone: 'UTC' };
  const s = nextWindow(w, at('2026-12-08T00:30:00Z'));
  expect([iso(s.open), iso(s.close)]).toEqual(['2026-12-07T22:00:00.000Z', '2026-12-08T01:00:00.000Z']);
});

test('daylight saving: New York 01:30–03:00 on the night clocks go back, and go forward', () => {
  const w = { start: '01:30', end: '03:00', timeZone: 'America/New_York' };
  // 2026-11-01: EDT (UTC-4) until 02:00 local, then EST (UTC-5).
  const back = nextWindow(w, at('2026-11-01T04:00:00Z'));
  expect(iso(back.close)).toBe('2026-11-01T08:00:00.000Z');
  // 2026-03-08: 02:00 local does not exist; the window still opens at 01:30 EST.
  const fwd = nextWindow(w, at('2026-03-08T05:00:00Z'));
  expect(iso(fwd.open)).toBe('2026-03-08T06:30:00.000Z');
  expect(iso(fwd.close)).toBe('2026-03-08T07:00:00.000Z');
});

test('notBefore alone, with a window, and neither', () => {
  const now = at('2026-12-07T10:00:00Z');
  expect(cutoverSlot({}, now)).toBeNull();
  expect(cutoverSlot({ notBefore: '2026-12-07T12:00:00Z' }, now)).toEqual({ open: at('2026-12-07T12:00:00Z'), close: Infinity });
  expect(cutoverSlot({ notBefore: '2026-12-01T00:00:00Z' }, now)).toEqual({ open: now, close: Infinity });
  // A window open now, but notBefore later inside it: from notBefore to the window's end.
  const w = { start: '09:00', end: '13:00', timeZone: 'UTC' };
  expect(cutoverSlot({ window: w, notBefore: '2026-12-07T11:00:00Z' }, now)).toEqual({ open: at('2026-12-07T11:00:00Z'), close: at('2026-12-07T13:00:00Z') });
  // notBefore after today's window: tomorrow's.
  expect(cutoverSlot({ window: w, notBefore: '2026-12-07T14:00:00Z' }, now)).toEqual({ open: at('2026-12-08T09:00:00Z'), close: at('2026-12-08T13:00:00Z') });
});

test('local time for the operator', () => {
  expect(localTime(at('2026-12-08T01:00:00Z'), 'Europe/Berlin')).toBe('Tue 2026-12-08 02:00:00 Europe/Berlin');
  expect(localTime(at('2026-12-08T01:00:00Z'))).toBe('Tue 2026-12-08 01:00:00 UTC');
});
