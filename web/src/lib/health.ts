/**
 * Stream health for the dashboard: a rolling history of the health answers (the last two
 * minutes), the series the graphs draw, the SVG path of a sparkline and the ladder's state in
 * words. Pure, so each piece is unit-tested.
 */
import type { ChannelHealth, HealthRendition, LadderRung } from "../api/types";

/** The graphs cover this much time (ms). */
export const HISTORY_MS = 120_000;
/** The dashboard asks for health this often while live (ms). */
export const HEALTH_POLL_MS = 2000;
/** The rungs a channel may choose, highest first (the API's names). */
export const LADDER_RUNGS: readonly LadderRung[] = ["720p", "480p", "360p"];

export interface RenditionSample {
  encodeSpeed: number | null;
  /** Frames dropped since the previous sample (null for the first one or after a reset). */
  droppedDelta: number | null;
  droppedTotal: number | null;
}

export interface HealthSample {
  /** When it was taken (epoch ms). */
  at: number;
  bitrateKbps: number | null;
  fps: number | null;
  renditions: Record<string, RenditionSample>;
}

function finite(value: number | null | undefined): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * `history` plus the sample made of `health` at `now`, without samples older than `HISTORY_MS`
 * (a new array; the input is left alone). An answer that is not live adds nothing.
 */
export function addSample(history: readonly HealthSample[], health: ChannelHealth, now: number): HealthSample[] {
  const kept = history.filter((s) => now - s.at <= HISTORY_MS && s.at <= now);
  if (!health.live) return kept;
  const previous = kept.at(-1);
  const renditions: Record<string, RenditionSample> = {};
  for (const r of health.renditions ?? []) {
    const total = finite(r.dropped_frames);
    const before = previous?.renditions[r.name]?.droppedTotal ?? null;
    renditions[r.name] = {
      encodeSpeed: finite(r.encode_speed),
      droppedTotal: total,
      // a counter that went down was reset (the rung restarted): no delta for this step
      droppedDelta: total !== null && before !== null && total >= before ? total - before : null,
    };
  }
  kept.push({
    at: now,
    bitrateKbps: finite(health.ingest?.bitrate_kbps),
    fps: finite(health.ingest?.fps),
    renditions,
  });
  return kept;
}

/** One figure over the history, oldest first, with the sample times. */
export interface Series {
  at: number[];
  values: (number | null)[];
}

export function series(history: readonly HealthSample[], pick: (s: HealthSample) => number | null): Series {
  return { at: history.map((s) => s.at), values: history.map(pick) };
}

/**
 * The `d` of an SVG path drawing `s` in a `width` x `height` box over the window that ends at
 * `end` and lasts `HISTORY_MS`: the y axis runs from 0 (bottom) to the largest value (at least
 * `floor`, so a flat line of small values does not fill the box). A null value breaks the line.
 * Empty when nothing is known.
 */
export function sparklinePath(s: Series, end: number, width: number, height: number, floor = 1): string {
  const known = s.values.filter((v): v is number => v !== null);
  if (known.length === 0) return "";
  const top = Math.max(floor, ...known);
  const start = end - HISTORY_MS;
  let d = "";
  let pen = false;
  s.values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const x = ((s.at[i]! - start) / HISTORY_MS) * width;
    const y = height - (Math.max(0, v) / top) * height;
    d += `${pen ? "L" : "M"}${round(Math.max(0, x))} ${round(y)} `;
    pen = true;
  });
  return d.trim();
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** The latest known value of a series (null when none). */
export function latest(s: Series): number | null {
  for (let i = s.values.length - 1; i >= 0; i -= 1) {
    const v = s.values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

/** The ladder's state in words for the streamer: what viewers get, and why. */
export function ladderState(health: ChannelHealth): string {
  const ladder = health.ladder;
  if (!ladder) return "";
  const said = (state: string, fallback: string): string => {
    const reason = ladder.reason?.trim().replace(/\.$/, "") || fallback;
    // "waiting for a free encoder slot" reads as is; other reasons follow the state's name
    if (!reason) return state;
    return reason.toLowerCase().startsWith(state.toLowerCase())
      ? reason[0]!.toUpperCase() + reason.slice(1)
      : `${state}: ${reason}`;
  };
  switch (ladder.state) {
    case "running": {
      const rungs = (health.renditions ?? []).filter((r) => r.name !== "source").map((r) => r.name);
      return rungs.length > 0 ? `Running: viewers can choose ${["source", ...rungs].join(", ")}` : said("Running", "");
    }
    case "waiting":
      return `${said("Waiting", "for a free encoder slot")}. Viewers get the source quality only until then.`;
    case "unavailable":
      return `${said("Unavailable", "")}. Viewers get the source quality only.`;
    case "off":
      return said("Off", "source quality only");
  }
}

/** "1.4×" for an encode speed (times real time); the source is copied, not encoded. */
export function formatSpeed(rendition: Pick<HealthRendition, "name" | "encode_speed">): string {
  if (rendition.name === "source") return "copied";
  const v = finite(rendition.encode_speed);
  return v === null ? "–" : `${v.toFixed(2)}×`;
}

/** An encoder under this speed is falling behind real time (it will drop frames). */
export const SLOW_SPEED = 1;
