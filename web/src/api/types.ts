/**
 * The API's shapes, from the types generated out of the server's OpenAPI document
 * (`schema.ts`, made by scripts/gen-api-types: never edit it by hand).
 */
import type { components, operations } from "./schema";

type Schemas = components["schemas"];

export type ApiErrorBody = Schemas["Error"];
export type PrivateUser = Schemas["PrivateUser"];
/** What login, register, refresh and a password change answer. */
export type SessionAnswer = Schemas["Session"];
export type Channel = Schemas["Channel"];
export type ChannelList = Schemas["ChannelList"];
/** A category of the directory (its cover art, live channels and their viewers). */
export type Category = Schemas["Category"];
export type CategoryList = Schemas["CategoryList"];
/** A category and a page of its channels. */
export type CategoryPage = Schemas["CategoryPage"];
/** A page of the channels that carry a tag. */
export type TagPage = Schemas["TagPage"];
export type SearchResults = Schemas["SearchResults"];
export type LiveStream = Schemas["LiveStream"];
export type StreamStats = Schemas["StreamStats"];
export type StreamKey = Schemas["StreamKey"];
export type IngestState = Schemas["IngestState"];
export type ServerInfo = Schemas["ServerInfo"];
/** A live channel's health (`{live: false}` alone when it is not live). */
export type ChannelHealth = Schemas["ChannelHealth"];
export type HealthRendition = NonNullable<ChannelHealth["renditions"]>[number];
/** The owner's ladder settings (on/off, which rungs), applied at the next broadcast. */
export type LadderSettings = Schemas["LadderSettings"];
export type LadderRung = LadderSettings["rungs"][number];
/** A channel's running bans and timeouts (`GET /channels/{name}/chat/bans`). */
export type ChatBans = Schemas["ChatBans"];
export type ChatBan = ChatBans["bans"][number];
/** A channel's moderation log (`GET /channels/{name}/chat/audit`), newest first. */
export type ChatAudit = Schemas["ChatAudit"];
export type ChatAuditEntry = ChatAudit["entries"][number];

/** A scheduled stream (start in UTC, and in its own zone as `starts_at_local`). */
export type ScheduledStream = Schemas["ScheduledStream"];
/** `GET /channels/{name}/schedule`: the channel's scheduled streams that have not ended. */
export type ChannelSchedule = Schemas["ChannelSchedule"];
/** `GET /schedule/upcoming`: every channel's, in pages. */
export type UpcomingSchedule = Schemas["UpcomingSchedule"];
/** One broadcast's figures (`GET /me/analytics`). */
export type BroadcastStats = Schemas["BroadcastStats"];
export type AnalyticsList = Schemas["AnalyticsList"];
/** One broadcast's figures and viewers over time (`GET /me/analytics/{id}`). */
export type BroadcastAnalytics = Schemas["BroadcastAnalytics"];
export type ViewerSample = BroadcastAnalytics["viewers"][number];

/** The JSON body an operation takes (by its operationId). */
export type BodyOf<K extends keyof operations> = operations[K] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

/** The JSON an operation answers on success (by its operationId); void for 204. */
export type AnswerOf<K extends keyof operations> = operations[K]["responses"] extends {
  200: { content: { "application/json": infer A } };
}
  ? A
  : operations[K]["responses"] extends { 201: { content: { "application/json": infer A } } }
    ? A
    : void;

/** The RTMP URL to show until `server-info` has answered: the page's host on port 1935. */
export function pageRtmpUrl(pageHostname: string): string {
  const host =
    pageHostname.includes(":") && !pageHostname.startsWith("[") ? `[${pageHostname}]` : pageHostname;
  return `rtmp://${host}:1935/live`;
}
