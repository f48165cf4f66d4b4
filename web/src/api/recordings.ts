/**
 * Recordings (past broadcasts): their shapes, from the generated `schema.ts`, and the calls.
 */
import type { ApiClient } from "./client";
import type { components } from "./schema";

export type Recording = components["schemas"]["Recording"];
export type RecordingList = components["schemas"]["RecordingList"];
export type RecordingSettings = components["schemas"]["RecordingSettings"];

const channelPath = (name: string) => `/channels/${encodeURIComponent(name)}`;

/** A channel's recordings, newest first (its owner also gets the failed ones). */
export function listRecordings(api: ApiClient, name: string, signal?: AbortSignal): Promise<RecordingList> {
  return api.request("GET", `${channelPath(name)}/recordings`, { signal });
}

export function getRecording(api: ApiClient, id: number, signal?: AbortSignal): Promise<Recording> {
  return api.request("GET", `/recordings/${id}`, { signal });
}

export function renameRecording(api: ApiClient, id: number, title: string): Promise<Recording> {
  return api.request("PATCH", `/recordings/${id}`, { body: { title } });
}

export function deleteRecording(api: ApiClient, id: number): Promise<void> {
  return api.request("DELETE", `/recordings/${id}`);
}

export function recordingSettings(api: ApiClient, name: string, signal?: AbortSignal): Promise<RecordingSettings> {
  return api.request("GET", `${channelPath(name)}/recording-settings`, { signal });
}

export function setRecording(api: ApiClient, name: string, enabled: boolean): Promise<RecordingSettings> {
  return api.request("PATCH", `${channelPath(name)}/recording-settings`, { body: { enabled } });
}

/** 3725.4 -> "1:02:05", 65 -> "1:05". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** 1536 -> "1.5 KiB", ... -> "2.0 GiB". */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** What a recording is called when its broadcast had no title. */
export function recordingTitle(r: Pick<Recording, "title" | "started_at">): string {
  if (r.title) return r.title;
  return `Broadcast of ${new Date(r.started_at).toLocaleString()}`;
}

/** The warning the owner sees for a recording that stopped early or failed (else null). */
export function recordingWarning(r: Pick<Recording, "state" | "reason">): string | null {
  if (r.state === "stopped") return `Recording stopped early: ${r.reason ?? "unknown reason"}.`;
  if (r.state === "failed") return `Recording failed: ${r.reason ?? "nothing was recorded"}.`;
  return null;
}
