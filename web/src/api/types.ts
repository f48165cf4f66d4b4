/**
 * Shapes the web app reads from the API, with normalisers that accept slightly different
 * answers (missing fields, a list wrapped in an object) so one server change does not blank a page.
 */

export interface StreamStats {
  video_codec: string | null;
  audio_codec: string | null;
  width: number | null;
  height: number | null;
  fps: number | null;
  bitrate_kbps: number | null;
  keyframe_interval_s: number | null;
  encoder: string | null;
}

export interface LiveStream {
  /** Broadcast id when the server sends one: a new id means a new broadcast. */
  id: string | null;
  started_at: string | null;
  stats: StreamStats | null;
}

export interface Channel {
  name: string;
  display_name: string;
  title: string;
  description: string;
  category: string;
  tags: string[];
  live: boolean;
  stream: LiveStream | null;
  /** Avatar URL; null when the server says there is none, undefined when it does not say. */
  avatar_url: string | null | undefined;
  /** False while the streamer has ended the broadcast and holds the key off. */
  ingest_enabled: boolean | undefined;
}

export interface Me {
  username: string;
  display_name: string;
  email: string;
  bio: string;
  avatar_url: string | null | undefined;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown, fallback = ""): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : fallback;
}

function strOrNull(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function num(v: unknown): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
}

function tags(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((t): t is string => typeof t === "string" && t !== "");
  if (typeof v === "string") return splitTags(v);
  return [];
}

function avatarOf(v: Obj): string | null | undefined {
  if (!("avatar_url" in v)) return undefined;
  return typeof v.avatar_url === "string" && v.avatar_url !== "" ? v.avatar_url : null;
}

/** "a, b ,,c" -> ["a", "b", "c"]: commas separate, blanks and duplicates are dropped. */
export function splitTags(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(",")) {
    const t = part.trim();
    if (t && !out.includes(t)) out.push(t);
  }
  return out;
}

export function normalizeStats(v: unknown): StreamStats | null {
  if (!isObj(v)) return null;
  return {
    video_codec: strOrNull(v.video_codec),
    audio_codec: strOrNull(v.audio_codec),
    width: num(v.width),
    height: num(v.height),
    fps: num(v.fps),
    bitrate_kbps: num(v.bitrate_kbps),
    keyframe_interval_s: num(v.keyframe_interval_s),
    encoder: strOrNull(v.encoder),
  };
}

export function normalizeChannel(v: unknown): Channel | null {
  if (!isObj(v)) return null;
  const name = str(v.name ?? v.username);
  if (!name) return null;
  const live = v.live === true || v.live === 1 || v.live === "true";
  let stream: LiveStream | null = null;
  if (isObj(v.stream)) {
    // stats may sit under stream.stats or directly on stream
    const stats = normalizeStats(v.stream.stats ?? v.stream);
    const id = v.stream.id;
    stream = {
      id: typeof id === "number" || typeof id === "string" ? String(id) : null,
      started_at: strOrNull(v.stream.started_at),
      stats,
    };
  }
  return {
    name,
    display_name: str(v.display_name) || name,
    title: str(v.title),
    description: str(v.description),
    category: str(v.category),
    tags: tags(v.tags),
    live,
    stream: live ? stream : null,
    avatar_url: avatarOf(v),
    ingest_enabled: typeof v.ingest_enabled === "boolean" ? v.ingest_enabled : undefined,
  };
}

/** Channel lists may be a bare array or wrapped as {channels|items|results|data: [...]}. */
export function normalizeChannelList(v: unknown): Channel[] {
  let list: unknown[] = [];
  if (Array.isArray(v)) list = v;
  else if (isObj(v)) {
    for (const key of ["channels", "items", "results", "data"]) {
      const inner = v[key];
      if (Array.isArray(inner)) {
        list = inner;
        break;
      }
    }
  }
  const channels = list.map(normalizeChannel).filter((c): c is Channel => c !== null);
  // live first (stable sort keeps the server's order otherwise)
  return channels
    .map((c, i) => ({ c, i }))
    .sort((a, b) => Number(b.c.live) - Number(a.c.live) || a.i - b.i)
    .map(({ c }) => c);
}

export function normalizeMe(v: unknown): Me | null {
  const u = isObj(v) && isObj(v.user) ? v.user : v;
  if (!isObj(u)) return null;
  const username = str(u.username ?? u.name);
  if (!username) return null;
  return {
    username,
    display_name: str(u.display_name) || username,
    email: str(u.email),
    bio: str(u.bio),
    avatar_url: avatarOf(u),
  };
}

/** The stream key from `GET/POST me/stream-key`: `{stream_key}` or `{key}` or a bare string. */
export function streamKeyOf(v: unknown): string | null {
  if (typeof v === "string" && v) return v;
  if (!isObj(v)) return null;
  for (const k of ["stream_key", "key"]) {
    if (typeof v[k] === "string" && v[k] !== "") return v[k] as string;
  }
  return null;
}

/** Whether ingest is held off, when the stream-key answer says so (undefined when it doesn't). */
export function ingestEnabledOf(v: unknown): boolean | undefined {
  if (!isObj(v)) return undefined;
  if (typeof v.ingest_enabled === "boolean") return v.ingest_enabled;
  if (typeof v.enabled === "boolean") return v.enabled;
  return undefined;
}

/**
 * The RTMP server URL to show streamers. Prefers what `GET server-info` says
 * (`rtmp_url` / `ingest_url`, or `public_url`/`rtmp_port`), else `rtmp://<page host>:1935/live`.
 */
export function rtmpServerUrl(info: unknown, pageHostname: string): string {
  if (isObj(info)) {
    for (const k of ["rtmp_url", "ingest_url", "rtmp_server_url"]) {
      const u = info[k];
      if (typeof u === "string" && /^rtmps?:\/\//.test(u)) return u.replace(/\/+$/, "");
    }
    const port = num(info.rtmp_port) ?? 1935;
    const publicUrl = strOrNull(info.public_url);
    if (publicUrl) {
      try {
        return `rtmp://${new URL(publicUrl).hostname}:${port}/live`;
      } catch {
        // not a URL: fall back to the page's host
      }
    }
    if (num(info.rtmp_port) !== null) return `rtmp://${hostForUrl(pageHostname)}:${port}/live`;
  }
  return `rtmp://${hostForUrl(pageHostname)}:1935/live`;
}

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
