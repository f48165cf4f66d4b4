import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ChatMessage, ChatRole } from "../src/api/community";
import { encode } from "@msgpack/msgpack";
import { backoffMs, framesOf, socketUrl } from "../src/chat/socket";
import { FakeWebSocket } from "./fakeSocket";
import { channel, serve, session, user } from "./helpers";
import { acceptedSocket, chatSocket, renderAt } from "./render";

const alice = channel("alice", { live: true, title: "Coding" });
const bobUser = user("bob", 2);

function msg(id: number, name: string, text: string, extra: { color?: string | null; role?: ChatRole } = {}): ChatMessage {
  return {
    type: "message",
    id,
    user: { name, display_name: name[0]!.toUpperCase() + name.slice(1), color: extra.color ?? null, role: extra.role ?? "viewer" },
    text,
    ts: 1_800_000_000 + id,
  };
}

function welcome(role: ChatRole, me: string | null, history: ChatMessage[] = [], room = { slow: 0, followers_only: null as number | null }) {
  return {
    type: "welcome",
    room: { channel: "alice", ...room },
    you: { user: me, role, color: me ? "#ff7f50" : null },
    history,
  };
}

function push(s: FakeWebSocket, frame: object) {
  act(() => s.push(frame));
}

beforeEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});

afterEach(() => {
  cleanup();
});

describe("chat socket", () => {
  it("builds ws and wss URLs on the page's origin and backs off from 1 s to 30 s", () => {
    expect(socketUrl("/ws/chat/a", { protocol: "https:", host: "tv.example" })).toBe("wss://tv.example/ws/chat/a");
    expect(socketUrl("/ws/events", { protocol: "http:", host: "127.0.0.1:8000" })).toBe("ws://127.0.0.1:8000/ws/events");
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 9].map((n) => backoffMs(n, mid))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(backoffMs(0, () => 0)).toBe(800);
    expect(backoffMs(0, () => 1)).toBe(1200);
  });

  it("signs in with the first frame (never in the URL), and again on the socket when the token is refreshed", async () => {
    let n = 0;
    const server = serve(
      {
        "GET /channels/alice": alice,
        "POST /auth/refresh": () => ({ status: 200, body: session(++n, 900, bobUser) }),
      },
      true,
      bobUser,
    );
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    expect(s.url).not.toContain("access");
    expect(s.binaryType).toBe("arraybuffer");
    expect(s.sent[0]).toEqual({ type: "auth", token: "access-1" });
    // a refresh: the new token goes on the open socket, no reconnect
    await act(async () => {
      await server.client.refresh();
    });
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "auth", token: "access-2" });
    expect(FakeWebSocket.all.filter((x) => x.url.endsWith("/ws/chat/alice"))).toHaveLength(1);
    // signing out reconnects anonymously
    await act(async () => {
      await server.client.logout();
    });
    const anonymous = FakeWebSocket.last("/ws/chat/alice");
    expect(anonymous).not.toBe(s);
    act(() => anonymous.accept());
    expect(anonymous.sent).toEqual([]);
  });

  it("reads every msgpack map of a message, in order, and skips what is not a frame", () => {
    const bytes = (...values: unknown[]) => {
      const parts = values.map((v) => (v instanceof Uint8Array ? v : encode(v)));
      const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      parts.reduce((at, p) => (out.set(p, at), at + p.byteLength), 0);
      return out;
    };
    expect(framesOf(bytes({ type: "pong" }))).toEqual([{ type: "pong" }]);
    expect(framesOf(bytes({ type: "a" }, 7, { no: "type" }, { type: "b", n: 1 }))).toEqual([{ type: "a" }, { type: "b", n: 1 }]);
    // bytes that are not msgpack end the message; what came before them counts
    expect(framesOf(bytes({ type: "a" }, new Uint8Array([0xc1, 0x00])))).toEqual([{ type: "a" }]);
    expect(framesOf(new Uint8Array([0xc1]))).toEqual([]);
    expect(framesOf(new Uint8Array())).toEqual([]);
  });

  it("shows every frame of a message that carries several", async () => {
    const server = serve({ "GET /channels/alice": alice });
    renderAt("/alice", server);
    const s = await chatSocket();
    act(() => s.pushMany([welcome("anonymous", null, [msg(1, "carol", "hi")]), msg(2, "dave", "one"), msg(3, "erin", "two")]));
    expect(screen.getAllByTestId("chat-message").map((li) => li.textContent)).toEqual(["Carol: hi", "Dave: one", "Erin: two"]);
    act(() => s.pushMany([msg(4, "dave", "three"), { type: "deleted", id: 2 }], new Uint8Array([0xc1])));
    expect(screen.getAllByTestId("chat-message").map((li) => li.textContent)).not.toContain("Dave: one");
    expect(screen.getAllByTestId("chat-message").map((li) => li.textContent)).toContain("Dave: three");
  });

  it("reconnects after a drop, with backoff, and shows that it is reconnecting", async () => {
    const server = serve({ "GET /channels/alice": alice });
    renderAt("/alice", server);
    const s = await chatSocket();
    push(s, welcome("anonymous", null, [msg(1, "carol", "hi")]));
    expect(s.sent).toEqual([]); // signed out: no auth frame
    vi.useFakeTimers();
    act(() => s.drop());
    expect(screen.getByText("Reconnecting…")).toBeTruthy();
    const count = () => FakeWebSocket.all.filter((x) => x.url.endsWith("/ws/chat/alice")).length;
    expect(count()).toBe(1);
    act(() => vi.advanceTimersByTime(1300));
    expect(count()).toBe(2);
    // the second attempt fails at once: the wait doubles
    act(() => FakeWebSocket.last("/ws/chat/alice").drop());
    act(() => vi.advanceTimersByTime(1300));
    expect(count()).toBe(2);
    act(() => vi.advanceTimersByTime(1300));
    expect(count()).toBe(3);
    const again = FakeWebSocket.last("/ws/chat/alice");
    act(() => again.accept());
    act(() => vi.advanceTimersByTime(30_000));
    expect(again.sent).toEqual([{ type: "ping" }]); // keep-alive
    vi.useRealTimers();
    push(again, welcome("anonymous", null, [msg(1, "carol", "hi"), msg(2, "dave", "back")]));
    expect(screen.queryByText("Reconnecting…")).toBeNull();
    expect(screen.getAllByTestId("chat-message").map((li) => li.textContent)).toEqual(["Carol: hi", "Dave: back"]);
  });
});

describe("chat panel", () => {
  it("shows history and live messages with names in their colour, as text only", async () => {
    const server = serve({ "GET /channels/alice": alice });
    renderAt("/alice", server);
    const s = await chatSocket();
    push(s, welcome("anonymous", null, [msg(1, "carol", "hello", { color: "#1e90ff" })]));
    push(s, msg(2, "<img src=x onerror=alert(1)>", "<img src=x onerror=alert(2)><b>bold</b>"));
    const log = screen.getByTestId("chat-log");
    expect(log.querySelector("img")).toBeNull();
    expect(log.querySelector("b")).toBeNull();
    const rows = within(log).getAllByTestId("chat-message");
    expect(rows).toHaveLength(2);
    expect(rows[1]!.textContent).toContain("<img src=x onerror=alert(2)><b>bold</b>");
    const name = within(rows[0]!).getByText("Carol");
    expect(name.style.color).toBe("rgb(30, 144, 255)");
    // deleted and cleared
    push(s, { type: "deleted", id: 1 });
    expect(screen.getAllByTestId("chat-message")).toHaveLength(1);
    push(s, { type: "cleared" });
    expect(screen.queryAllByTestId("chat-message")).toHaveLength(0);
  });

  it("loads earlier messages page by page from the history endpoint, keeping the reader's place", async () => {
    const server = serve({
      "GET /channels/alice": alice,
      "GET /channels/alice/chat?before=60&limit=50": { messages: [msg(59, "carol", "fifty-nine"), msg(58, "carol", "fifty-eight")] },
      "GET /channels/alice/chat?before=58&limit=50": { messages: [] },
    });
    renderAt("/alice", server);
    const s = await chatSocket();
    push(s, welcome("anonymous", null, [msg(60, "carol", "sixty"), msg(61, "carol", "sixty-one")]));
    const log = screen.getByTestId("chat-log");
    let height = 500;
    Object.defineProperty(log, "scrollHeight", { configurable: true, get: () => height });
    Object.defineProperty(log, "clientHeight", { configurable: true, get: () => 300 });
    log.scrollTop = 0;
    fireEvent.scroll(log);
    fireEvent.click(screen.getByRole("button", { name: "Load earlier messages" }));
    height = 700; // the page adds 200 px above
    await waitFor(() => expect(screen.getAllByTestId("chat-message")).toHaveLength(4));
    expect(screen.getAllByTestId("chat-message").map((li) => li.textContent)).toEqual([
      "Carol: fifty-eight",
      "Carol: fifty-nine",
      "Carol: sixty",
      "Carol: sixty-one",
    ]);
    expect(log.scrollTop).toBe(200); // the same messages stay in view
    fireEvent.click(screen.getByRole("button", { name: "Load earlier messages" }));
    await waitFor(() => expect(screen.queryByRole("button", { name: /earlier messages/ })).toBeNull());
    expect(server.sent()).toContain("GET /channels/alice/chat?before=58&limit=50");
  });

  it("is read-only with a sign-in prompt when signed out", async () => {
    const server = serve({ "GET /channels/alice": alice });
    renderAt("/alice", server);
    const s = await chatSocket();
    push(s, welcome("anonymous", null));
    const prompt = screen.getByTestId("chat-signin");
    expect(within(prompt).getByRole("link", { name: "Sign in" }).getAttribute("href")).toBe("/login?next=%2Falice");
    expect(screen.queryByLabelText("Message")).toBeNull();
  });

  it("sends a message, shows the slow-mode wait as a countdown and keeps the refused text", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, bobUser);
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    push(s, welcome("viewer", "bob", [], { slow: 30, followers_only: 600 }));
    expect(screen.getByTestId("chat-modes").textContent).toBe("Slow mode: 30 s · Followers only (10 min)");
    const input = screen.getByLabelText("Message") as HTMLInputElement;
    fireEvent.change(input, { target: { value: "first" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    const say = s.sent.find((f) => f.type === "say")!;
    expect(say.text).toBe("first");
    expect(input.value).toBe("");
    push(s, { type: "error", code: "slow_mode", message: "Slow mode: wait before sending again", retry_after: 3, nonce: say.nonce });
    expect(input.value).toBe("first");
    expect(screen.getByTestId("chat-notice").textContent).toBe("Slow mode: wait before sending again");
    const button = screen.getByRole("button", { name: /Wait \d s/ }) as HTMLButtonElement;
    expect(button.textContent).toBe("Wait 3 s");
    expect(button.disabled).toBe(true);
    await waitFor(() => expect(button.textContent).toBe("Wait 2 s"), { timeout: 2000 });
    // the room's mode changes live
    push(s, { type: "mode", slow: 0, followers_only: null });
    expect(screen.queryByTestId("chat-modes")).toBeNull();
  });

  it("tells a user who was timed out, with the time left", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, bobUser);
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    push(s, welcome("viewer", "bob"));
    push(s, { type: "timeout", user: "carol", until: Date.now() / 1000 + 60, reason: "" });
    expect(screen.queryByTestId("chat-notice")).toBeNull();
    push(s, { type: "timeout", user: "bob", until: Date.now() / 1000 + 600, reason: "spam" });
    expect(screen.getByTestId("chat-notice").textContent).toBe("You were timed out: spam");
    expect(screen.getByTestId("chat-wait").textContent).toMatch(/^Timed out: (600|599) s left$/);
    push(s, { type: "ban", user: "bob", reason: "" });
    expect(screen.getByTestId("chat-notice").textContent).toBe("You are banned from this chat.");
    expect(screen.queryByLabelText("Message")).toBeNull();
  });

  it("lets a moderator delete, time out and ban from a message, and set the room's modes", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, bobUser);
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    push(
      s,
      welcome("moderator", "bob", [
        msg(1, "carol", "spam"),
        msg(2, "alice", "welcome", { role: "broadcaster" }),
        msg(3, "bob", "mine", { role: "moderator" }),
      ]),
    );
    // only carol's message can be moderated (not the broadcaster's, not one's own)
    expect(screen.getAllByRole("button", { name: /^Moderate / })).toHaveLength(1);
    const open = () => fireEvent.click(screen.getByRole("button", { name: "Moderate Carol's message" }));
    open();
    expect(screen.getByRole("button", { name: "Moderate Carol's message" }).getAttribute("aria-expanded")).toBe("true");
    fireEvent.click(screen.getByRole("button", { name: "Timeout 10 min" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "timeout", user: "carol", seconds: 600, reason: "" });
    push(s, { type: "timeout", user: "carol", until: Date.now() / 1000 + 600, seconds: 600, reason: "" });
    expect(screen.getByTestId("chat-notice").textContent).toBe("carol was timed out for 10 min.");
    expect(screen.queryByRole("button", { name: "Timeout 10 min" })).toBeNull();
    open();
    fireEvent.keyDown(screen.getByRole("button", { name: "Delete" }), { key: "Escape" });
    expect(screen.queryByRole("button", { name: "Delete" })).toBeNull();
    open();
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "delete", id: 1 });
    open();
    fireEvent.click(screen.getByRole("button", { name: "Ban" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "ban", user: "carol", reason: "" });

    fireEvent.change(screen.getByLabelText(/Slow mode/), { target: { value: "10" } });
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "mode", slow: 10, followers_only: null });
    fireEvent.change(screen.getByLabelText(/Followers only/), { target: { value: "0" } });
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "mode", slow: 0, followers_only: 0 });
    fireEvent.click(screen.getByRole("button", { name: "Clear chat" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "clear" });
  });

  it("lets the broadcaster make a chatter a moderator and take it back", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, user("alice", 1));
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    push(s, welcome("broadcaster", "alice", [msg(1, "carol", "hi"), msg(2, "dave", "yo", { role: "moderator" })]));
    fireEvent.click(screen.getByRole("button", { name: "Moderate Carol's message" }));
    fireEvent.click(screen.getByRole("button", { name: "Make moderator" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "mod", user: "carol" });
    fireEvent.click(screen.getByRole("button", { name: "Moderate Dave's message" }));
    fireEvent.click(screen.getByRole("button", { name: "Remove moderator" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "unmod", user: "dave" });
  });

  it("opens no room for a channel that does not exist", async () => {
    const server = serve({});
    renderAt("/nobody", server);
    await screen.findByText(/There is no channel called/);
    expect(FakeWebSocket.all.filter((x) => x.url.includes("/ws/chat/"))).toHaveLength(0);
  });

  it("has no moderation for viewers", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, bobUser);
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    push(s, welcome("viewer", "bob", [msg(1, "carol", "hi")]));
    expect(screen.queryByRole("button", { name: /^Moderate / })).toBeNull();
    expect(screen.queryByText("Room settings")).toBeNull();
  });

  it("follows new messages, but not while the reader scrolled up: then offers a button", async () => {
    const server = serve({ "GET /channels/alice": alice });
    renderAt("/alice", server);
    const s = await chatSocket();
    push(s, welcome("anonymous", null, [msg(1, "carol", "one")]));
    const log = screen.getByTestId("chat-log");
    let height = 1000;
    Object.defineProperty(log, "scrollHeight", { configurable: true, get: () => height });
    Object.defineProperty(log, "clientHeight", { configurable: true, get: () => 300 });
    push(s, msg(2, "carol", "two"));
    expect(log.scrollTop).toBe(1000);
    // the reader scrolls up
    log.scrollTop = 200;
    fireEvent.scroll(log);
    height = 1100;
    push(s, msg(3, "carol", "three"));
    expect(log.scrollTop).toBe(200);
    const more = screen.getByRole("button", { name: /New messages/ });
    fireEvent.click(more);
    expect(log.scrollTop).toBe(1100);
    expect(screen.queryByRole("button", { name: /New messages/ })).toBeNull();
    height = 1200;
    push(s, msg(4, "carol", "four"));
    expect(log.scrollTop).toBe(1200);
  });
});

describe("viewers and follows", () => {
  it("shows the viewer count from the channel, then from presence frames", async () => {
    const server = serve({ "GET /channels/alice": { ...alice, viewers: 41 } });
    renderAt("/alice", server);
    expect((await screen.findByTestId("viewer-count")).textContent).toBe("41 viewers");
    const s = await chatSocket();
    push(s, { type: "presence", viewers: 1, chatters: 1, anonymous: 0 });
    expect(screen.getByTestId("viewer-count").textContent).toBe("1 viewer");
  });

  it("follows and unfollows a channel", async () => {
    const server = serve(
      {
        "GET /channels/alice": { ...alice, follower_count: 2 },
        "PUT /channels/alice/follow": { following: true, follower_count: 3 },
        "DELETE /channels/alice/follow": { following: false, follower_count: 2 },
      },
      true,
      bobUser,
    );
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const follow = await screen.findByRole("button", { name: "Follow" });
    expect(screen.getByTestId("follower-count").textContent).toBe(" 2 followers");
    fireEvent.click(follow);
    await screen.findByRole("button", { name: "Following" });
    expect(screen.getByTestId("follower-count").textContent).toBe(" 3 followers");
    expect(server.find("PUT /channels/alice/follow")?.headers.Authorization).toBe("Bearer access-1");
    fireEvent.click(screen.getByRole("button", { name: "Following" }));
    await screen.findByRole("button", { name: "Follow" });
    expect(server.sent()).toContain("DELETE /channels/alice/follow");
  });

  it("offers no follow button on one's own channel", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, user("alice", 1));
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    await screen.findByTestId("channel-title");
    expect(screen.queryByRole("button", { name: "Follow" })).toBeNull();
  });
});

describe("notifications and live browse", () => {
  it("shows the unread count, pushes new ones from /ws/events and marks them read", async () => {
    const server = serve(
      {
        "GET /channels": { channels: [] },
        "GET /me/notifications": {
          notifications: [{ id: 1, kind: "live", channel: "carol", title: "Old stream", ts: 1_800_000_000, read: false }],
          unread: 1,
        },
        "POST /me/notifications/read": { unread: 0 },
      },
      true,
      bobUser,
    );
    renderAt("/", server);
    expect((await screen.findByTestId("unread-count")).textContent).toBe("1");
    const events = await acceptedSocket("/ws/events");
    expect(events.sent[0]).toEqual({ type: "auth", token: "access-1" });
    push(events, { type: "notification", id: 2, kind: "live", channel: "alice", title: "<script>x</script>", ts: 1_800_000_100 });
    expect(screen.getByTestId("unread-count").textContent).toBe("2");
    fireEvent.click(screen.getByRole("button", { name: "Notifications, 2 unread" }));
    const items = screen.getAllByTestId("notification");
    expect(items.map((i) => i.textContent)).toEqual(["alice is live: <script>x</script>", "carol is live: Old stream"]);
    expect(document.querySelector("script")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Mark all read" }));
    await waitFor(() => expect(server.find("POST /me/notifications/read")?.body).toEqual({ all: true }));
    expect(screen.queryByTestId("unread-count")).toBeNull();
  });

  it("closes the events socket on sign-out without reopening it", async () => {
    const server = serve({ "GET /channels": { channels: [] }, "GET /me/notifications": { notifications: [], unread: 0 } }, true, bobUser);
    renderAt("/", server);
    const events = await acceptedSocket("/ws/events");
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await waitFor(() => expect(events.readyState).toBe(FakeWebSocket.CLOSED));
    expect(FakeWebSocket.all.filter((s) => s.url.endsWith("/ws/events"))).toHaveLength(1);
    expect(screen.queryByRole("button", { name: /Notifications/ })).toBeNull();
  });

  it("opens no events socket when signed out", async () => {
    const server = serve({ "GET /channels": { channels: [] } });
    renderAt("/", server);
    await screen.findByText("Nobody is live right now.");
    expect(FakeWebSocket.all.filter((s) => s.url.endsWith("/ws/events"))).toHaveLength(0);
    expect(screen.queryByRole("button", { name: /Notifications/ })).toBeNull();
  });

  it("starts a followed channel's page playing when the events socket says it went live", async () => {
    let live = false;
    const server = serve(
      {
        "GET /channels/carol": () => ({ status: 200, body: channel("carol", { live }) }),
        "GET /me/notifications": { notifications: [], unread: 0 },
      },
      true,
      bobUser,
    );
    renderAt("/carol", server);
    await screen.findByTestId("channel-offline");
    const events = await acceptedSocket("/ws/events");
    const asked = server.sent().filter((c) => c === "GET /channels/carol").length;
    live = true;
    push(events, { type: "channel", name: "someone-else", live: true, title: "", category: "" });
    push(events, { type: "channel", name: "carol", live: true, title: "Now live", category: "" });
    await waitFor(() => expect(screen.queryByTestId("channel-offline")).toBeNull());
    expect(server.sent().filter((c) => c === "GET /channels/carol").length).toBe(asked + 1);
  });

  it("moves a followed channel to live on the browse page without a reload", async () => {
    const carol = channel("carol");
    let live = false;
    const server = serve(
      {
        "GET /channels": () => ({ status: 200, body: { channels: [{ ...carol, live, title: live ? "Now live" : "" }] } }),
        "GET /me/notifications": { notifications: [], unread: 0 },
      },
      true,
      bobUser,
    );
    renderAt("/", server);
    await screen.findByTestId("offline-channels");
    const events = await acceptedSocket("/ws/events");
    live = true;
    push(events, { type: "channel", name: "carol", live: true, title: "Now live", category: "Art" });
    const liveList = await screen.findByTestId("live-channels");
    expect(within(liveList).getByText("Now live")).toBeTruthy();
    expect(screen.queryByTestId("offline-channels")).toBeNull();
  });
});
