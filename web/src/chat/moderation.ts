/** Words for the moderation views: the ban list's entries and the moderation log's lines. */
import type { ChatAuditEntry, ChatBan } from "../api/types";
import { describeModes, describeSeconds } from "./state";

/** Timeout lengths offered to moderators, in seconds. */
export const TIMEOUTS = [60, 600, 3600, 86400, 604800];

/** A clock time, with the date when it is not today: "14:05" or "3 Feb, 14:05". */
export function formatWhen(ms: number, nowMs: number = Date.now()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === new Date(nowMs).toDateString()) return time;
  return `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
}

/**
 * "Banned" or "Timed out until 14:05" (`offsetMs`: server clock minus client clock, so the
 * server's epoch seconds become client times).
 */
export function describeBan(ban: Pick<ChatBan, "until">, offsetMs: number, nowMs: number = Date.now()): string {
  if (ban.until === null) return "Banned";
  return `Timed out until ${formatWhen(ban.until * 1000 - offsetMs, nowMs)}`;
}

/** Whether a listed ban still holds (a timeout runs out without a frame saying so). */
export function banRunning(ban: Pick<ChatBan, "until">, offsetMs: number, nowMs: number = Date.now()): boolean {
  return ban.until === null || ban.until * 1000 - offsetMs > nowMs;
}

const GONE = "a deleted account";

/** One line of the moderation log, without its reason: "alice timed out bob for 10 min". */
export function describeAudit(entry: Pick<ChatAuditEntry, "action" | "actor" | "target" | "data">): string {
  const actor = entry.actor ?? GONE;
  const target = entry.target ?? GONE;
  const data = entry.data as Record<string, unknown>;
  switch (entry.action) {
    case "ban":
      return `${actor} banned ${target}`;
    case "unban":
      return `${actor} unbanned ${target}`;
    case "timeout":
      return typeof data.seconds === "number"
        ? `${actor} timed out ${target} for ${describeSeconds(data.seconds)}`
        : `${actor} timed out ${target}`;
    case "delete":
      return entry.target ? `${actor} deleted a message by ${target}` : `${actor} deleted a message`;
    case "clear":
      return `${actor} cleared the chat`;
    case "mod":
      return `${actor} made ${target} a moderator`;
    case "unmod":
      return `${actor} removed ${target} as a moderator`;
    case "mode": {
      const slow = typeof data.slow === "number" ? data.slow : 0;
      const followers = typeof data.followers_only === "number" ? data.followers_only : null;
      const modes = describeModes({ slow, followers_only: followers });
      return `${actor} set the room modes: ${modes || "none"}`;
    }
    case "blocked_terms": {
      const n = Array.isArray(data.terms) ? data.terms.length : 0;
      return `${actor} changed the blocked terms (${n} ${n === 1 ? "term" : "terms"})`;
    }
    default:
      return entry.target ? `${actor}: ${entry.action} ${entry.target}` : `${actor}: ${entry.action}`;
  }
}
