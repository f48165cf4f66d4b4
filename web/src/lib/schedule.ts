/**
 * Time zones and times of scheduled streams: the browser's zone, the zones to pick from, a start
 * shown in a zone, the wall-clock value of a `datetime-local` input, durations. Pure (the clock
 * and the zone are arguments), so each piece is unit-tested.
 */

/** The browser's IANA time zone (UTC when the browser does not say). */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** A short list for browsers that cannot list their zones. */
const FALLBACK_ZONES = [
  "UTC",
  "Europe/London",
  "Europe/Paris",
  "Europe/Berlin",
  "Europe/Moscow",
  "America/New_York",
  "America/Chicago",
  "America/Denver",
  "America/Los_Angeles",
  "America/Sao_Paulo",
  "Asia/Kolkata",
  "Asia/Shanghai",
  "Asia/Tokyo",
  "Australia/Sydney",
];

/** The zones to choose from, sorted, with `extra` (the browser's, the stream's) and UTC in. */
export function timeZones(...extra: string[]): string[] {
  let listed: string[] = FALLBACK_ZONES;
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: string) => string[] };
  try {
    if (typeof intl.supportedValuesOf === "function") listed = intl.supportedValuesOf("timeZone");
  } catch {
    listed = FALLBACK_ZONES;
  }
  return [...new Set([...listed, "UTC", ...extra.filter(Boolean)])].sort();
}

/** "Sat 1 Mar, 20:00" in `zone` (default: the browser's). */
export function formatStart(iso: string, zone?: string): string {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  try {
    return new Intl.DateTimeFormat(undefined, {
      weekday: "short",
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone: zone,
    }).format(when);
  } catch {
    return when.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }
}

/** "20:00" (with `seconds`: "20:00:05") in `zone`. */
export function formatClock(iso: string, zone?: string, seconds = false): string {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  try {
    return new Intl.DateTimeFormat(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      second: seconds ? "2-digit" : undefined,
      hourCycle: "h23",
      timeZone: zone,
    }).format(when);
  } catch {
    return when.toISOString().slice(11, seconds ? 19 : 16);
  }
}

/** The value of a `datetime-local` input for a stream's `starts_at_local`
 * ("2026-03-01T20:00:00+01:00" -> "2026-03-01T20:00"): its wall clock in its own zone. */
export function inputValue(startsAtLocal: string): string {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d/.exec(startsAtLocal)?.[0] ?? "";
}

/** The wall clock of `at` (epoch ms) in `zone` as a `datetime-local` value ("2026-03-01T20:00"). */
export function wallClock(at: number, zone: string): string {
  try {
    const parts = new Intl.DateTimeFormat("en-GB", {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone: zone,
    }).formatToParts(new Date(at));
    const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "00";
    return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}`;
  } catch {
    return new Date(at).toISOString().slice(0, 16);
  }
}

/** 90 -> "1 h 30 min"; 45 -> "45 min"; 120 -> "2 h". */
export function formatMinutes(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = Math.round(minutes % 60);
  if (h === 0) return `${m} min`;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Seconds as "45 s", "12 min 05 s", "2 h 05 min". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** How far off a start is: "in 3 days", "in 2 h", "in 12 min", "starting now", "started". */
export function relativeStart(iso: string, now: number): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const minutes = Math.round((at - now) / 60_000);
  if (minutes < -1) return "started";
  if (minutes <= 1) return "starting now";
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `in ${hours} h`;
  return `in ${Math.round(hours / 24)} days`;
}

/** The durations the editor offers (minutes), with `current` added when it is not one. */
export function durationChoices(current?: number): number[] {
  const base = [15, 30, 45, 60, 90, 120, 150, 180, 240, 300, 360, 480, 720, 1440];
  if (current !== undefined && !base.includes(current)) base.push(current);
  return base.sort((a, b) => a - b);
}
