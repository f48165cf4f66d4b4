/**
 * A small inline SVG line graph of one figure over the last two minutes, with its latest value
 * in text beside it. The SVG is an image whose accessible name gives the figure, its latest,
 * lowest and highest values, so screen-reader users get what the line shows.
 */
import { latest, sparklinePath, type Series } from "../lib/health";

const WIDTH = 240;
const HEIGHT = 40;

export interface SparklineProps {
  /** What is drawn, e.g. "Ingest bitrate". */
  label: string;
  series: Series;
  /** When the window ends (epoch ms): the newest sample is drawn this far from the right edge. */
  end: number;
  /** Formats a value for the text and the accessible name. */
  format: (value: number | null) => string;
  /** The y axis reaches at least this value (default 1). */
  floor?: number;
  /** A dashed reference line at this value (e.g. 1× real time for an encoder), if in range. */
  reference?: number;
  /** Marks the figure as a problem (e.g. an encoder below real time). */
  warn?: boolean;
  testId?: string;
}

export function Sparkline({ label, series, end, format, floor = 1, reference, warn = false, testId }: SparklineProps) {
  const known = series.values.filter((v): v is number => v !== null);
  const now = latest(series);
  const top = Math.max(floor, reference ?? 0, ...known);
  const path = sparklinePath(series, end, WIDTH, HEIGHT, top);
  const summary =
    known.length === 0
      ? `${label}: no data yet`
      : `${label} over the last 2 minutes: now ${format(now)}, lowest ${format(Math.min(...known))}, ` +
        `highest ${format(Math.max(...known))}`;
  const refY = reference !== undefined ? HEIGHT - (reference / top) * HEIGHT : null;
  return (
    <div className={warn ? "spark spark-warn" : "spark"} data-testid={testId}>
      <div className="spark-head">
        <span className="spark-label">{label}</span>
        <span className="spark-value" data-value={now ?? ""}>
          {format(now)}
        </span>
      </div>
      <svg
        className="spark-graph"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={summary}
        focusable="false"
      >
        {refY !== null && (
          <line className="spark-ref" x1={0} x2={WIDTH} y1={refY} y2={refY} vectorEffect="non-scaling-stroke" />
        )}
        {path && <path className="spark-line" d={path} vectorEffect="non-scaling-stroke" />}
      </svg>
    </div>
  );
}
