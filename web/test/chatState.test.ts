import { describe, expect, it } from "vitest";
import type { ChatMessage, ChatServerFrame } from "../src/api/community";
import { chatReducer, describeModes, describeSeconds, initialChat, MAX_MESSAGES, type ChatAction } from "../src/chat/state";

const msg = (id: number): ChatMessage => ({
  type: "message",
  id,
  user: { name: "carol", display_name: "Carol", color: null, role: "viewer" },
  text: `m${id}`,
  ts: id,
});

const frame = (f: ChatServerFrame, now = 1_000_000): ChatAction => ({
  type: "frame",
  frame: f,
  now,
  offset: 0,
  pending: new Map<string, string>(),
});

describe("chat state", () => {
  it("keeps the newest messages only, once each", () => {
    let s = chatReducer(initialChat, frame({ type: "welcome", room: { channel: "a", slow: 0, followers_only: null }, you: { user: null, role: "anonymous", color: null }, history: [] }));
    for (let i = 1; i <= MAX_MESSAGES + 5; i++) s = chatReducer(s, frame(msg(i)));
    s = chatReducer(s, frame(msg(MAX_MESSAGES + 5)));
    expect(s.messages).toHaveLength(MAX_MESSAGES);
    expect(s.messages[0]!.id).toBe(6);
    expect(s.messages[s.messages.length - 1]!.id).toBe(MAX_MESSAGES + 5);
  });

  it("turns retry_after into a deadline and gives back the refused text by nonce", () => {
    const pending = new Map([["n1", "hello"]]);
    const s = chatReducer(initialChat, {
      type: "frame",
      frame: { type: "error", code: "rate_limited", message: "Too fast", retry_after: 2.5, nonce: "n1" },
      now: 10_000,
      offset: 0,
      pending,
    });
    expect(s.waitUntil).toBe(12_500);
    expect(s.refused).toEqual({ text: "hello", seq: 1 });
    expect(pending.size).toBe(0);
    // an error for no message of ours leaves the input alone
    const t = chatReducer(s, frame({ type: "error", code: "x", message: "nope", nonce: "n9" }));
    expect(t.refused).toEqual({ text: "hello", seq: 1 });
    expect(t.waitUntil).toBe(12_500);
  });

  it("pages older messages in before the first one, and knows when there are no more", () => {
    let s = chatReducer(initialChat, frame({ type: "welcome", room: { channel: "a", slow: 0, followers_only: null }, you: { user: null, role: "anonymous", color: null }, history: [msg(10)] }));
    expect(s.older).toBe(true);
    s = chatReducer(s, { type: "older", messages: [msg(9), msg(12), msg(8)] });
    expect(s.messages.map((m) => m.id)).toEqual([8, 9, 10]);
    s = chatReducer(s, { type: "older", messages: [] });
    expect(s.older).toBe(false);
  });

  it("converts the server's timeout deadline to the client clock", () => {
    let s = chatReducer(initialChat, frame({ type: "welcome", room: { channel: "a", slow: 0, followers_only: null }, you: { user: "bob", role: "viewer", color: null }, history: [] }));
    // the server's clock runs 5 s ahead of ours
    s = chatReducer(s, { type: "frame", frame: { type: "timeout", user: "bob", until: 1_060, seconds: 60, reason: "" }, now: 1_000_000, offset: 5000, pending: new Map() });
    expect(s.timedOutUntil).toBe(1_055_000);
    expect(s.waitUntil).toBe(1_055_000);
    s = chatReducer(s, frame({ type: "unban", user: "bob" }));
    expect([s.timedOutUntil, s.waitUntil, s.banned]).toEqual([0, 0, false]);
  });

  it("tells moderators the timeout's length as given, whatever the clocks say", () => {
    let s = chatReducer(initialChat, frame({ type: "welcome", room: { channel: "a", slow: 0, followers_only: null }, you: { user: "mod", role: "moderator", color: null }, history: [] }));
    // the deadline arrives 1.4 s late by our clock: the notice still says the length the moderator chose
    s = chatReducer(s, { type: "frame", frame: { type: "timeout", user: "bob", until: 1_060, seconds: 60, reason: "" }, now: 998_600, offset: 0, pending: new Map() });
    expect(s.notice).toBe("bob was timed out for 1 min.");
  });

  it("describes the room's modes", () => {
    expect(describeModes({ slow: 0, followers_only: null })).toBe("");
    expect(describeModes({ slow: 5, followers_only: 0 })).toBe("Slow mode: 5 s · Followers only");
    expect(describeModes({ slow: 0, followers_only: 86400 })).toBe("Followers only (1 d)");
    expect([90, 7200, 45].map(describeSeconds)).toEqual(["90 s", "2 h", "45 s"]);
  });
});
