/** The chat room as the web app sees it: a pure reducer over the socket's frames. */
import type { ChatMessage, ChatRole, ChatServerFrame, RoomModes } from "../api/community";
import type { SocketStatus } from "./socket";

/** Messages kept in memory (older ones scroll away). */
export const MAX_MESSAGES = 300;

export interface ChatState {
  status: SocketStatus;
  messages: ChatMessage[];
  you: { user: string | null; role: ChatRole; color: string | null };
  modes: RoomModes;
  /** From presence frames (null until the first). */
  viewers: number | null;
  chatters: number | null;
  /** Client epoch ms until which sending is refused (rate limit, slow mode, timeout). */
  waitUntil: number;
  /** The last refusal or notice to show ("" for none). */
  notice: string;
  /** Client epoch ms until which the signed-in user is timed out (0: not). */
  timedOutUntil: number;
  banned: boolean;
  /** Older messages may exist on the server (the history endpoint pages through them). */
  older: boolean;
  /** A refused message's text to put back in the input, with a counter so each refusal lands. */
  refused: { text: string; seq: number } | null;
  /**
   * Counts the moderation frames a moderator's socket received (and its welcomes): the ban list
   * and the moderation log fetch again when it changes.
   */
  moderation: number;
}

export const initialChat: ChatState = {
  status: "connecting",
  messages: [],
  you: { user: null, role: "anonymous", color: null },
  modes: { slow: 0, followers_only: null },
  viewers: null,
  chatters: null,
  waitUntil: 0,
  notice: "",
  timedOutUntil: 0,
  banned: false,
  older: false,
  refused: null,
  moderation: 0,
};

/** Frames after which a moderator's ban list or moderation log may have changed. */
const MODERATION_FRAMES = new Set(["welcome", "ban", "timeout", "unban", "deleted", "cleared", "mode", "mod", "unmod"]);

export type ChatAction =
  | {
      type: "frame";
      frame: ChatServerFrame;
      /** Client epoch ms. */
      now: number;
      /** Server clock minus client clock in ms (the server's epoch times are converted). */
      offset: number;
      /** Texts of the messages sent and not yet answered, by nonce. */
      pending: Map<string, string>;
    }
  | { type: "status"; status: SocketStatus }
  /** A page of history from the REST endpoint, older than the first message shown. */
  | { type: "older"; messages: ChatMessage[] }
  | { type: "notice"; notice: string };

function keep(messages: ChatMessage[]): ChatMessage[] {
  return messages.length > MAX_MESSAGES ? messages.slice(messages.length - MAX_MESSAGES) : messages;
}

export function chatReducer(state: ChatState, action: ChatAction): ChatState {
  if (action.type === "status") return { ...state, status: action.status };
  if (action.type === "notice") return { ...state, notice: action.notice };
  if (action.type === "older") {
    const first = state.messages[0]?.id ?? Infinity;
    const older = action.messages.filter((m) => m.id < first).sort((a, b) => a.id - b.id);
    return { ...state, messages: [...older, ...state.messages], older: older.length > 0 };
  }
  const next = frameReducer(state, action);
  return MODERATION_FRAMES.has(action.frame.type) && moderates(next) ? { ...next, moderation: next.moderation + 1 } : next;
}

function frameReducer(state: ChatState, action: Extract<ChatAction, { type: "frame" }>): ChatState {
  const { frame, now } = action;
  switch (frame.type) {
    case "welcome":
      return {
        ...state,
        status: "open",
        messages: keep(frame.history),
        older: frame.history.length > 0,
        you: frame.you,
        modes: { slow: frame.room.slow, followers_only: frame.room.followers_only },
        banned: false,
      };
    case "message":
      if (state.messages.some((m) => m.id === frame.id)) return state;
      return { ...state, messages: keep([...state.messages, frame]) };
    case "deleted":
      return { ...state, messages: state.messages.filter((m) => m.id !== frame.id) };
    case "cleared":
      return { ...state, messages: [], notice: "The chat was cleared by a moderator." };
    case "timeout": {
      if (frame.user !== state.you.user) {
        const notice = `${frame.user} was timed out for ${describeSeconds(frame.seconds)}.`;
        return moderates(state) ? { ...state, notice } : state;
      }
      const until = frame.until * 1000 - action.offset;
      return {
        ...state,
        timedOutUntil: until,
        waitUntil: Math.max(state.waitUntil, until),
        notice: `You were timed out${frame.reason ? `: ${frame.reason}` : "."}`,
      };
    }
    case "ban":
      if (frame.user !== state.you.user) {
        return moderates(state) ? { ...state, notice: `${frame.user} was banned.` } : state;
      }
      return { ...state, banned: true, notice: `You are banned from this chat${frame.reason ? `: ${frame.reason}` : "."}` };
    case "unban":
      if (frame.user !== state.you.user) {
        return moderates(state) ? { ...state, notice: `${frame.user} was unbanned.` } : state;
      }
      return { ...state, banned: false, timedOutUntil: 0, waitUntil: 0, notice: "" };
    case "mode":
      return { ...state, modes: { slow: frame.slow, followers_only: frame.followers_only } };
    case "presence":
      return { ...state, viewers: frame.viewers, chatters: frame.chatters };
    case "error": {
      const waitUntil =
        typeof frame.retry_after === "number" && frame.retry_after > 0
          ? now + frame.retry_after * 1000
          : state.waitUntil;
      const text = frame.nonce !== undefined ? action.pending.get(frame.nonce) : undefined;
      if (frame.nonce !== undefined) action.pending.delete(frame.nonce);
      return {
        ...state,
        waitUntil,
        notice: frame.message || frame.code,
        refused: text !== undefined ? { text, seq: (state.refused?.seq ?? 0) + 1 } : state.refused,
      };
    }
    default:
      return state;
  }
}

function moderates(state: ChatState): boolean {
  return state.you.role === "moderator" || state.you.role === "broadcaster";
}

/** "Slow mode: 30 s · Followers only (10 min)" or "" for an unrestricted room. */
export function describeModes(modes: RoomModes): string {
  const parts: string[] = [];
  if (modes.slow > 0) parts.push(`Slow mode: ${modes.slow} s`);
  if (modes.followers_only !== null) {
    parts.push(modes.followers_only > 0 ? `Followers only (${describeSeconds(modes.followers_only)})` : "Followers only");
  }
  return parts.join(" · ");
}

export function describeSeconds(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
