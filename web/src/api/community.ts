/**
 * Shapes of the community API (follows, notifications, chat history) and of the chat and events
 * sockets' frames.
 *
 * Hand-written for now: replace the REST ones with aliases of the generated `schema.ts` types
 * (like types.ts does) once the server's OpenAPI document describes these routes.
 */

/** `PUT/DELETE /channels/{name}/follow`. */
export interface FollowState {
  following: boolean;
  follower_count: number;
}

/** One notification: `kind` "live" (a followed channel went live), "schedule_reminder" or
 * "schedule_start" (one of its scheduled streams starts soon / now). */
export interface Notification {
  id: number;
  kind: string;
  channel: string;
  title: string;
  /** Epoch seconds, or an ISO 8601 string. */
  ts: number | string;
  read?: boolean;
  /** The scheduled stream (schedule kinds only). */
  schedule_id?: number;
  /** Its start: epoch seconds on the socket, ISO 8601 from the REST list. */
  starts_at?: number | string | null;
}

/** `GET /me/notifications`. */
export interface NotificationList {
  notifications: Notification[];
  unread: number;
}

/** `POST /me/notifications/read`: some ids, or all of them. */
export type MarkRead = { ids: number[] } | { all: true };

/** The figures the community adds to a channel's JSON (absent from older servers). */
export interface ChannelCommunity {
  viewers?: number;
  follower_count?: number;
  following?: boolean;
}

export type ChatRole = "anonymous" | "viewer" | "moderator" | "broadcaster";

export interface ChatUser {
  name: string;
  display_name: string;
  color: string | null;
  role: ChatRole;
}

export interface ChatMessage {
  type: "message";
  id: number;
  user: ChatUser;
  text: string;
  /** Epoch seconds. */
  ts: number;
}

/** `GET /channels/{name}/chat`. */
export interface ChatHistory {
  messages: ChatMessage[];
}

export interface RoomModes {
  slow: number;
  followers_only: number | null;
}

/** What the chat socket sends. */
export type ChatServerFrame =
  | {
      type: "welcome";
      room: RoomModes & { channel: string };
      you: { user: string | null; role: ChatRole; color: string | null };
      history: ChatMessage[];
    }
  | ChatMessage
  | { type: "deleted"; id: number }
  | { type: "cleared" }
  | { type: "timeout"; user: string; until: number; seconds: number; reason: string }
  | { type: "ban"; user: string; reason: string }
  | { type: "unban"; user: string }
  | ({ type: "mode" } & RoomModes)
  | { type: "mod"; user: string }
  | { type: "unmod"; user: string }
  | { type: "presence"; viewers: number; chatters: number; anonymous: number }
  | { type: "error"; code: string; message: string; retry_after?: number; nonce?: string }
  | { type: "pong" };

/** What the web app sends on the chat socket (besides auth and ping). */
export type ChatClientFrame =
  | { type: "say"; text: string; nonce: string }
  | { type: "delete"; id: number }
  | { type: "timeout"; user: string; seconds: number; reason: string }
  | { type: "ban"; user: string; reason: string }
  | { type: "unban"; user: string }
  | { type: "clear" }
  | ({ type: "mode" } & RoomModes)
  | { type: "mod"; user: string }
  | { type: "unmod"; user: string };

/** What the events socket pushes to a signed-in user. */
export type EventFrame =
  | { type: "notification"; id: number; kind: string; channel: string; title: string; ts: number | string }
  | {
      type: "channel";
      name: string;
      live: boolean;
      title: string;
      category: string;
      /** The live viewer count (null when not live; absent from older servers). */
      viewers?: number | null;
      /** Present when a change touched the tags. */
      tags?: string[];
    };
