/** Small formatters shared by the pages. */

/** 1.234 -> "1.2 s behind"; under 0.05 s (or negative) -> "live". */
export function formatBehind(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "";
  if (seconds < 0.05) return "live";
  if (seconds < 60) return `${seconds.toFixed(1)} s behind`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return `${m} min ${s} s behind`;
}

/** 2500 -> "2.5 Mb/s"; 800 -> "800 kb/s". */
export function formatBitrate(kbps: number | null): string {
  if (kbps === null || !Number.isFinite(kbps)) return "–";
  if (kbps >= 1000) return `${(kbps / 1000).toFixed(1)} Mb/s`;
  return `${Math.round(kbps)} kb/s`;
}

/** Elapsed time since an ISO date: "45 s", "12 min", "2 h 05 min". */
export function formatUptime(startedAt: string | null, now: number): string {
  if (!startedAt) return "";
  const t = Date.parse(startedAt);
  if (Number.isNaN(t)) return "";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** 1280, 720 -> "1280×720"; missing parts -> "–". */
export function formatResolution(width: number | null, height: number | null): string {
  return width && height ? `${width}×${height}` : "–";
}

export function formatFps(fps: number | null): string {
  if (fps === null || !Number.isFinite(fps)) return "–";
  return Number.isInteger(fps) ? `${fps}` : fps.toFixed(2);
}

/**
 * The rendition's name: the master playlist's NAME attribute, else the folder of its URI
 * (Kitch serves `/hls/{channel}/{rendition}/index.m3u8`); null when neither gives a plain name.
 */
export function renditionName(level: { name?: string; uri?: string; url?: string[] }): string | null {
  const plain = /^[a-z0-9_-]{1,32}$/i;
  if (level.name && plain.test(level.name)) return level.name;
  const uri = level.uri ?? level.url?.[0] ?? "";
  const folder = /([^/?#]+)\/[^/?#]+\.m3u8(?:[?#].*)?$/.exec(uri)?.[1];
  return folder && plain.test(folder) ? folder : null;
}

/**
 * Label for a rendition in the quality menu: "Source (1080p)" for the passthrough, a rung's
 * name ("720p"), else its height from RESOLUTION, else its bitrate.
 */
export function levelLabel(level: {
  height?: number;
  name?: string;
  uri?: string;
  url?: string[];
  bitrate?: number;
}): string {
  const name = renditionName(level);
  if (name?.toLowerCase() === "source") return level.height ? `Source (${level.height}p)` : "Source";
  if (name) return name;
  if (level.height) return `${level.height}p`;
  if (level.bitrate) return formatBitrate(level.bitrate / 1000);
  return "?";
}

/** Longest recommended keyframe interval in seconds; above it the dashboard warns. */
export const MAX_KEYFRAME_INTERVAL_S = 2;

export function keyframeWarning(intervalS: number | null): string | null {
  if (intervalS === null || intervalS <= MAX_KEYFRAME_INTERVAL_S + 1e-6) return null;
  return (
    `Your keyframe interval is ${intervalS.toFixed(1)} s. Set it to 1 or 2 s in OBS ` +
    `(Settings → Output → Keyframe Interval): long intervals add latency and delay quality switches.`
  );
}

/** 1 -> "1 viewer"; 1234 -> "1.2K viewers"; 2_500_000 -> "2.5M viewers". */
export function formatViewers(count: number): string {
  const n = Math.max(0, Math.floor(count));
  const unit = n === 1 ? "viewer" : "viewers";
  if (n < 1000) return `${n} ${unit}`;
  const [value, suffix] = n < 1_000_000 ? [n / 1000, "K"] : [n / 1_000_000, "M"];
  const shown = value < 10 ? value.toFixed(1).replace(/\.0$/, "") : String(Math.floor(value));
  return `${shown}${suffix} ${unit}`;
}
