/**
 * Viewers over one broadcast as an inline SVG line chart with a y axis (0, half, top) and the
 * start and end times under it. The SVG is an image whose accessible name sums it up (peak and
 * when, average, span); a table of the same numbers follows in a disclosure for anyone who
 * prefers to read them.
 */
import type { ViewerSample } from "../api/types";
import { niceTop, summarise, tableRows, thin, viewerPath } from "../lib/analytics";
import { formatClock } from "../lib/schedule";

const WIDTH = 600;
const HEIGHT = 190;
const LEFT = 36;
const TOP = 10;
const BOTTOM = 22;
/** Spans shorter than this (seconds) show their times with seconds. */
const SHORT = 600;

export function ViewersChart({ samples, label = "Viewers" }: { samples: readonly ViewerSample[]; label?: string }) {
  const summary = summarise(samples);
  if (summary.samples === 0) {
    return (
      <p className="muted small" data-testid="viewers-chart-empty">
        No viewer counts were recorded for this broadcast.
      </p>
    );
  }
  const top = niceTop(summary.peak);
  const plot = { width: WIDTH - LEFT, height: HEIGHT - TOP - BOTTOM };
  const path = viewerPath(thin(samples, plot.width), plot, top);
  const first = samples[0]!.t;
  const last = samples.at(-1)!.t;
  const clock = (t: number) => formatClock(new Date(t * 1000).toISOString(), undefined, last - first < SHORT);
  const text =
    `${label} from ${clock(first)} to ${clock(last)}: peak ${summary.peak}` +
    (summary.peakAt !== null ? ` at ${clock(summary.peakAt)}` : "") +
    `, average ${summary.average!.toFixed(1)}, ${summary.samples} samples`;
  const ticks = top >= 2 ? [0, top / 2, top] : [0, top];
  return (
    <figure className="viewers-chart" data-testid="viewers-chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={text}
        focusable="false"
        className="viewers-svg"
        data-peak={summary.peak}
      >
        <g transform={`translate(${LEFT} ${TOP})`}>
          {ticks.map((v) => {
            const y = plot.height - (v / top) * plot.height;
            return (
              <g key={v} className="chart-tick">
                <line x1={0} x2={plot.width} y1={y} y2={y} />
                <text x={-6} y={y} dy="0.35em" textAnchor="end">
                  {Number.isInteger(v) ? v : v.toFixed(1)}
                </text>
              </g>
            );
          })}
          <path className="chart-line" d={path} vectorEffect="non-scaling-stroke" />
          <text className="chart-time" x={0} y={HEIGHT - TOP - 6} textAnchor="start">
            {clock(first)}
          </text>
          <text className="chart-time" x={plot.width} y={HEIGHT - TOP - 6} textAnchor="end">
            {clock(last)}
          </text>
        </g>
      </svg>
      <figcaption className="small muted" data-testid="viewers-summary">
        {text}
      </figcaption>
      <details className="chart-table">
        <summary>Viewer counts as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Viewers</th>
            </tr>
          </thead>
          <tbody>
            {tableRows(samples).map((row) => (
              <tr key={row.from}>
                <td>{row.from === row.to ? clock(row.from) : `${clock(row.from)}–${clock(row.to)}`}</td>
                <td>{row.most === row.least ? row.most : `${row.least}–${row.most}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
