import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ChatRole, ChatServerFrame } from "../src/api/community";
import type { ChatAuditEntry, ChatBan } from "../src/api/types";
import { banRunning, describeAudit, describeBan, formatWhen } from "../src/chat/moderation";
import { chatReducer, initialChat } from "../src/chat/state";
import { FakeWebSocket } from "./fakeSocket";
import { channel, serve, user } from "./helpers";
import { chatSocket, renderAt } from "./render";

const alice = channel("alice", { live: true, title: "Coding" });
const NOW_S = Date.now() / 1000;

function welcome(role: ChatRole, me: string | null) {
  return {
    type: "welcome",
    room: { channel: "alice", slow: 0, followers_only: null },
    you: { user: me, role, color: null },
    history: [],
  };
}

function ban(name: string, extra: Partial<ChatBan> = {}): ChatBan {
  return { user: name, display_name: name, until: null, reason: "", by: "alice", ts: NOW_S - 60, ...extra };
}

type EntryExtra = Omit<Partial<ChatAuditEntry>, "data"> & { data?: Record<string, unknown> };

function entry(id: number, action: string, { data = {}, ...extra }: EntryExtra = {}): ChatAuditEntry {
  return {
    id,
    action,
    actor: "alice",
    target: "carol",
    message_id: null,
    reason: "",
    data: data as ChatAuditEntry["data"], // the document says only "an object"
    ts: NOW_S - 100 + id,
    ...extra,
  };
}

/** Open a collapsed section (a <details>) by its summary's text. */
async function openSection(title: string) {
  const summary = screen.getByText(title, { selector: "summary" });
  const details = summary.parentElement as HTMLDetailsElement;
  await act(async () => {
    details.open = true;
    details.dispatchEvent(new Event("toggle"));
  });
  return details;
}

/** The broadcaster alice on her channel page, room settings open. */
async function asBroadcaster(routes: Record<string, unknown>) {
  const server = serve({ "GET /channels/alice": alice, ...routes }, true, user("alice", 1));
  renderAt("/alice", server);
  await screen.findByTestId("signed-in-as");
  const s = await chatSocket();
  act(() => s.push(welcome("broadcaster", "alice")));
  await openSection("Room settings");
  return { server, s };
}

beforeEach(() => {
  vi.useRealTimers();
  FakeWebSocket.reset();
});

afterEach(() => {
  cleanup();
});

describe("moderation words", () => {
  it("describes bans and log entries", () => {
    const now = Date.UTC(2026, 1, 3, 12, 0);
    expect(describeBan({ until: null }, 0, now)).toBe("Banned");
    expect(describeBan({ until: now / 1000 + 600 }, 0, now)).toBe(`Timed out until ${formatWhen(now + 600_000, now)}`);
    expect(formatWhen(now - 3 * 86_400_000, now)).toContain(",");
    expect(banRunning({ until: null }, 0, now)).toBe(true);
    expect(banRunning({ until: now / 1000 + 1 }, 0, now)).toBe(true);
    // the server's clock 5 s ahead: its deadline 3 s from its now has passed for us
    expect(banRunning({ until: now / 1000 + 3 }, 5000, now)).toBe(false);
    expect(describeAudit(entry(1, "timeout", { data: { seconds: 600 } }))).toBe("alice timed out carol for 10 min");
    expect(describeAudit(entry(1, "ban"))).toBe("alice banned carol");
    expect(describeAudit(entry(1, "unban", { actor: null }))).toBe("a deleted account unbanned carol");
    expect(describeAudit(entry(1, "delete", { target: null }))).toBe("alice deleted a message");
    expect(describeAudit(entry(1, "clear", { target: null }))).toBe("alice cleared the chat");
    expect(describeAudit(entry(1, "mod"))).toBe("alice made carol a moderator");
    expect(describeAudit(entry(1, "unmod"))).toBe("alice removed carol as a moderator");
    expect(describeAudit(entry(1, "mode", { target: null, data: { slow: 30, followers_only: null } }))).toBe(
      "alice set the room modes: Slow mode: 30 s",
    );
    expect(describeAudit(entry(1, "mode", { target: null, data: { slow: 0, followers_only: null } }))).toBe(
      "alice set the room modes: none",
    );
    expect(describeAudit(entry(1, "blocked_terms", { target: null, data: { terms: ["a"] } }))).toBe(
      "alice changed the blocked terms (1 term)",
    );
  });

  it("counts moderation frames for moderators only", () => {
    const frame = (f: ChatServerFrame) => ({ type: "frame" as const, frame: f, now: 0, offset: 0, pending: new Map<string, string>() });
    const asViewer = chatReducer(initialChat, frame(welcome("viewer", "bob") as ChatServerFrame));
    expect(chatReducer(asViewer, frame({ type: "ban", user: "carol", reason: "" })).moderation).toBe(0);
    let mod = chatReducer(initialChat, frame(welcome("moderator", "bob") as ChatServerFrame));
    expect(mod.moderation).toBe(1);
    for (const f of [
      { type: "ban", user: "carol", reason: "" },
      { type: "timeout", user: "carol", until: 1, seconds: 1, reason: "" },
      { type: "unban", user: "carol" },
      { type: "mod", user: "dave" },
    ] as ChatServerFrame[]) {
      mod = chatReducer(mod, frame(f));
    }
    expect(mod.moderation).toBe(5);
    expect(chatReducer(mod, frame({ type: "pong" })).moderation).toBe(5);
  });
});

describe("banned users", () => {
  it("lists bans and timeouts as text, unbans on the socket and fetches again after the frame", async () => {
    const answers = [
      {
        bans: [
          ban("carol", { until: NOW_S + 600, reason: "<b>spam</b>", by: "dave" }),
          ban("erin", { display_name: "Erin E" }),
          ban("old", { until: NOW_S - 5 }), // ran out since
        ],
        more: false,
      },
      { bans: [ban("erin", { display_name: "Erin E" })], more: false },
    ];
    const { server, s } = await asBroadcaster({ "GET /channels/alice/chat/bans": () => ({ status: 200, body: answers.shift() }) });
    expect(server.sent()).not.toContain("GET /channels/alice/chat/bans"); // closed: not fetched
    await openSection("Banned users");
    const list = await screen.findByRole("list", { name: "Banned users" });
    const rows = within(list).getAllByTestId("banned-user");
    expect(rows).toHaveLength(2);
    expect(rows[0]!.textContent).toContain("carol");
    expect(rows[0]!.textContent).toMatch(/Timed out until .+ by dave: <b>spam<\/b>/);
    expect(list.querySelector("b")).toBeNull(); // the reason is text
    expect(rows[1]!.textContent).toContain("Erin E (erin)");
    expect(rows[1]!.textContent).toContain("Banned by alice");

    fireEvent.click(within(list).getByRole("button", { name: "Unban carol" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "unban", user: "carol" });
    act(() => s.push({ type: "unban", user: "carol" }));
    await waitFor(() => expect(within(list).getAllByTestId("banned-user")).toHaveLength(1));
    expect(server.sent().filter((x) => x === "GET /channels/alice/chat/bans")).toHaveLength(2);
    expect(answers).toHaveLength(0);
  });

  it("bans or times out a user by name", async () => {
    const { s } = await asBroadcaster({ "GET /channels/alice/chat/bans": { bans: [], more: false } });
    await openSection("Banned users");
    await screen.findByText("Nobody is banned or timed out.");
    const form = screen.getByRole("form", { name: "Ban or time out a user" });
    const submit = within(form).getByRole("button", { name: "Time out user" });
    expect((submit as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(within(form).getByLabelText(/User/), { target: { value: " @Carol " } });
    fireEvent.change(within(form).getByLabelText(/Reason/), { target: { value: " too loud " } });
    fireEvent.click(submit);
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "timeout", user: "carol", seconds: 600, reason: "too loud" });
    expect((within(form).getByLabelText(/User/) as HTMLInputElement).value).toBe("");
    fireEvent.change(within(form).getByLabelText(/User/), { target: { value: "dave" } });
    fireEvent.change(within(form).getByLabelText(/Action/), { target: { value: "ban" } });
    fireEvent.click(within(form).getByRole("button", { name: "Ban user" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "ban", user: "dave", reason: "" });
    fireEvent.change(within(form).getByLabelText(/User/), { target: { value: "erin" } });
    fireEvent.change(within(form).getByLabelText(/Action/), { target: { value: "86400" } });
    fireEvent.click(within(form).getByRole("button", { name: "Time out user" }));
    expect(s.sent[s.sent.length - 1]).toEqual({ type: "timeout", user: "erin", seconds: 86400, reason: "" });
  });

  it("says why the list could not be loaded", async () => {
    await asBroadcaster({
      "GET /channels/alice/chat/bans": () => ({ status: 403, body: { error: { code: "forbidden", message: "only moderators" } } }),
    });
    await openSection("Banned users");
    const chat = screen.getByRole("complementary", { name: "Chat" });
    expect((await within(chat).findByRole("alert")).textContent).toBe("Could not load the banned users: only moderators");
  });
});

describe("moderation log", () => {
  it("shows the log newest first as text and pages back", async () => {
    const page = Array.from({ length: 25 }, (_, i) => entry(100 - i, "delete", { reason: i === 0 ? "<i>rude</i>" : "" }));
    const { server } = await asBroadcaster({
      "GET /channels/alice/chat/audit?limit=25": { entries: page },
      "GET /channels/alice/chat/audit?before=76&limit=25": { entries: [entry(3, "timeout", { data: { seconds: 60 } })] },
    });
    await openSection("Moderation log");
    const log = await screen.findByRole("list", { name: "Moderation log" });
    const rows = within(log).getAllByTestId("audit-entry");
    expect(rows).toHaveLength(25);
    expect(rows[0]!.textContent).toContain("alice deleted a message by carol: <i>rude</i>");
    expect(log.querySelector("i")).toBeNull();
    expect(rows[0]!.querySelector("time")!.getAttribute("dateTime")).toBe(new Date(page[0]!.ts * 1000).toISOString());
    fireEvent.click(screen.getByRole("button", { name: "Load older entries" }));
    await waitFor(() => expect(within(log).getAllByTestId("audit-entry")).toHaveLength(26));
    expect(within(log).getAllByTestId("audit-entry")[25]!.textContent).toContain("alice timed out carol for 1 min");
    expect(screen.queryByRole("button", { name: "Load older entries" })).toBeNull();
    expect(server.sent()).toContain("GET /channels/alice/chat/audit?before=76&limit=25");
  });

  it("is not offered to viewers", async () => {
    const server = serve({ "GET /channels/alice": alice }, true, user("bob", 2));
    renderAt("/alice", server);
    await screen.findByTestId("signed-in-as");
    const s = await chatSocket();
    act(() => s.push(welcome("viewer", "bob")));
    expect(screen.queryByText("Room settings")).toBeNull();
    expect(screen.queryByText("Banned users")).toBeNull();
    expect(screen.queryByText("Moderation log")).toBeNull();
  });
});
