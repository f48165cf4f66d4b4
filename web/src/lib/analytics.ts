/**
 * The viewers-over-time chart's arithmetic: the y axis top, the SVG path, the text summary and
 * the rows of the table that stands in for the chart. Pure, so each piece is unit-tested.
 */
import type { ViewerSample } from "../api/types";

export interface Box {
  width: number;
  height: number;
}

/** The smallest "round" number (1, 2, 5 x 10^n) at or above `n`, and at least 1. */
export function niceTop(n: number): number {
  if (!(n > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= n) return step * power;
  }
  return 10 * power;
}

/**
 * At most `columns` points: when there are more samples than columns, each column keeps its
 * highest count (a peak is never hidden by drawing fewer points).
 */
export function thin(samples: readonly ViewerSample[], columns: number): ViewerSample[] {
  if (samples.length <= columns) return [...samples];
  const first = samples[0]!.t;
  const span = samples.at(-1)!.t - first || 1;
  const out: ViewerSample[] = [];
  let bucket = -1;
  for (const s of samples) {
    const b = Math.min(columns - 1, Math.floor(((s.t - first) / span) * columns));
    if (b !== bucket) {
      out.push({ ...s });
      bucket = b;
    } else if (s.viewers > out.at(-1)!.viewers) {
      out[out.length - 1] = { t: out.at(-1)!.t, viewers: s.viewers };
    }
  }
  return out;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/**
 * The `d` of a path drawing the samples in `box`: time from left to right over the samples'
 * span, viewers from 0 (bottom) to `top`. A lone sample is a short flat line. Empty when there
 * are no samples.
 */
export function viewerPath(samples: readonly ViewerSample[], box: Box, top: number): string {
  if (samples.length === 0) return "";
  const first = samples[0]!.t;
  const span = samples.at(-1)!.t - first;
  const y = (v: number) => box.height - (Math.max(0, v) / top) * box.height;
  if (span <= 0) {
    const v = y(samples[0]!.viewers);
    return `M0 ${r(v)} L${r(box.width)} ${r(v)}`;
  }
  return samples
    .map((s, i) => `${i === 0 ? "M" : "L"}${r(((s.t - first) / span) * box.width)} ${r(y(s.viewers))}`)
    .join(" ");
}

export interface ViewerSummary {
  peak: number;
  /** When the peak was first reached (Unix seconds); null without samples. */
  peakAt: number | null;
  average: number | null;
  samples: number;
}

export function summarise(samples: readonly ViewerSample[]): ViewerSummary {
  if (samples.length === 0) return { peak: 0, peakAt: null, average: null, samples: 0 };
  let peak = samples[0]!;
  let total = 0;
  for (const s of samples) {
    if (s.viewers > peak.viewers) peak = s;
    total += s.viewers;
  }
  return { peak: peak.viewers, peakAt: peak.t, average: total / samples.length, samples: samples.length };
}

export interface TableRow {
  /** Start and end of the span (Unix seconds). */
  from: number;
  to: number;
  /** Highest and lowest count in it. */
  most: number;
  least: number;
}

/** At most `rows` rows covering the samples in order, each with its span's highest and lowest
 * count (every sample its own row when there are few). */
export function tableRows(samples: readonly ViewerSample[], rows = 30): TableRow[] {
  if (samples.length === 0) return [];
  const per = Math.ceil(samples.length / rows);
  const out: TableRow[] = [];
  for (let i = 0; i < samples.length; i += per) {
    const chunk = samples.slice(i, i + per);
    const counts = chunk.map((s) => s.viewers);
    out.push({ from: chunk[0]!.t, to: chunk.at(-1)!.t, most: Math.max(...counts), least: Math.min(...counts) });
  }
  return out;
}
