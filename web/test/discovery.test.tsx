import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiProvider } from "../src/api/context";
import type { Category, Channel, SearchResults } from "../src/api/types";
import { CategoryTile, ChannelCard } from "../src/components/ChannelCard";
import { SearchBox, suggestionsFor } from "../src/components/SearchBox";
import { applyChannelEvent, byViewers } from "../src/lib/channelFeed";
import { formatViewers } from "../src/lib/format";
import { addTags, normaliseTag, tagKey } from "../src/lib/tags";
import { FakeWebSocket } from "./fakeSocket";
import { channel, serve, user, type Call, type Server } from "./helpers";
import { acceptedSocket, renderAt } from "./render";

function category(slug: string, name: string, extra: Partial<Category> = {}): Category {
  return {
    slug,
    name,
    hue: 200,
    image_url: `/api/v1/categories/${slug}/image?v=1`,
    custom_image: false,
    live_channels: 0,
    viewers: 0,
    ...extra,
  };
}

const music = category("music", "Music", { live_channels: 2, viewers: 12 });
const art = category("art", "Art");
const live = (name: string, viewers: number, extra: Partial<Channel> = {}) =>
  channel(name, { live: true, viewers, title: `${name} live`, ...extra });

function Where() {
  const location = useLocation();
  return <p data-testid="where">{location.pathname + location.search}</p>;
}

/** The search box alone in a router, with a line that shows where it navigated. */
function renderSearchBox(server: Server) {
  return render(
    <ApiProvider client={server.client}>
      <MemoryRouter initialEntries={["/"]}>
        <SearchBox delayMs={20} />
        <Routes>
          <Route path="*" element={<Where />} />
        </Routes>
      </MemoryRouter>
    </ApiProvider>,
  );
}

function results(q: string, channels: Channel[], categories: Category[] = []): SearchResults {
  return { terms: q.split(/\s+/), channels, categories, next_offset: null };
}

beforeEach(() => {
  FakeWebSocket.reset();
});

afterEach(() => {
  cleanup();
});

describe("tag rules", () => {
  it("normalises like the server", () => {
    expect(normaliseTag("  Speed   Run ")).toEqual({ tag: "Speed Run" });
    expect(normaliseTag("\uff32\uff30\uff27")).toEqual({ tag: "RPG" });
    expect(normaliseTag("c++").tag).toBe("c++");
    expect(normaliseTag("Cafe\u0301").tag).toBe("Café");
    expect(normaliseTag("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645").tag).toBeDefined();
  });

  it("refuses what the server refuses", () => {
    for (const bad of ["", "  ", "x".repeat(26), "🎮", "<b>", "a/b", "---", "a\tb", "\u202eabc", "a\u200bb", "\u200cx"]) {
      expect(normaliseTag(bad).error, JSON.stringify(bad)).toBeTruthy();
    }
  });

  it("adds comma-separated tags, skipping duplicates, up to ten", () => {
    expect(addTags(["RPG"], "rpg, chill ,, Chill")).toEqual({ tags: ["RPG", "chill"], error: "" });
    expect(addTags([], "ok, 🎮, fine").tags).toEqual(["ok", "fine"]);
    expect(addTags([], "ok, 🎮").error).toContain("may only use");
    const nine = Array.from({ length: 9 }, (_, i) => `t${i}`);
    const full = addTags(nine, "a, b");
    expect(full.tags).toHaveLength(10);
    expect(full.error).toContain("at most 10");
    expect(tagKey("Speed  RUN")).toBe(tagKey("speed run"));
  });
});

describe("viewer counts", () => {
  it("reads like a streaming site", () => {
    expect(formatViewers(0)).toBe("0 viewers");
    expect(formatViewers(1)).toBe("1 viewer");
    expect(formatViewers(999)).toBe("999 viewers");
    expect(formatViewers(1234)).toBe("1.2K viewers");
    expect(formatViewers(1000)).toBe("1K viewers");
    expect(formatViewers(45_600)).toBe("45K viewers");
    expect(formatViewers(2_500_000)).toBe("2.5M viewers");
  });
});

describe("channel events on a list", () => {
  const frame = (extra: object) => ({
    type: "channel" as const,
    name: "alice",
    live: true,
    title: "t",
    category: "Music",
    viewers: 3,
    ...extra,
  });
  const list = [live("alice", 1, { category: "Music", category_slug: "music", tags: ["a"] }), channel("bob")];

  it("updates a card in place", () => {
    const { list: next, stale } = applyChannelEvent(list, frame({ title: "New", viewers: 9, tags: ["b"] }));
    expect(stale).toBe(false);
    expect(next[0]).toMatchObject({ title: "New", viewers: 9, tags: ["b"], category_slug: "music" });
    expect(next[1]).toBe(list[1]);
    // a frame without tags keeps them
    expect(applyChannelEvent(list, frame({})).list[0]!.tags).toEqual(["a"]);
  });

  it("asks again for what it cannot show", () => {
    expect(applyChannelEvent(list, frame({ live: false })).stale).toBe(true);
    expect(applyChannelEvent(list, frame({ category: "Art" })).stale).toBe(true);
    expect(applyChannelEvent(list, frame({ name: "carol" })).stale).toBe(false);
    expect(applyChannelEvent(list, frame({ name: "carol" }), true).stale).toBe(true);
    expect(applyChannelEvent(list, frame({ name: "carol", live: false }), true).stale).toBe(false);
  });

  it("orders live channels by viewers", () => {
    const sorted = byViewers([channel("off"), live("few", 2), live("many", 40)]);
    expect(sorted.map((c) => c.name)).toEqual(["many", "few", "off"]);
  });
});

describe("channel card", () => {
  const wrap = (ui: React.ReactNode) => render(<MemoryRouter>{<ul>{ui}</ul>}</MemoryRouter>);

  it("shows a placeholder without a thumbnail, and the picture with one", () => {
    const c = live("alice", 1234, { category: "Music", category_slug: "music", tags: ["chill", "lofi"] });
    wrap(<ChannelCard channel={c} />);
    expect(screen.getByTestId("thumbnail-placeholder")).toBeTruthy();
    expect(screen.queryByTestId("thumbnail")).toBeNull();
    expect(screen.getByTestId("viewer-count").textContent).toBe("1.2K viewers");
    expect(screen.getByRole("link", { name: "Music" }).getAttribute("href")).toBe("/directory/music");
    expect(screen.getByRole("link", { name: "lofi" }).getAttribute("href")).toBe("/search?tag=lofi");
    expect(screen.getByRole("link", { name: /alice live/ }).getAttribute("href")).toBe("/alice");
    cleanup();
    const url = "/thumbnails/alice/640x360.jpg?v=1700000000000";
    wrap(<ChannelCard channel={{ ...c, thumbnail_url: url }} />);
    const img = screen.getByTestId("thumbnail").querySelector("img")!;
    expect(img.getAttribute("src")).toBe(url);
    // small cards fetch the 320x180 picture
    expect(img.getAttribute("srcset")).toBe(
      "/thumbnails/alice/320x180.jpg?v=1700000000000 320w, /thumbnails/alice/640x360.jpg?v=1700000000000 640w",
    );
    expect(img.getAttribute("alt")).toBe("");
    expect(screen.queryByTestId("thumbnail-placeholder")).toBeNull();
  });

  it("says offline and shows no viewers for an offline channel", () => {
    wrap(<ChannelCard channel={channel("bob")} />);
    expect(screen.queryByTestId("viewer-count")).toBeNull();
    expect(screen.getByText("Offline")).toBeTruthy();
  });

  it("tiles a category with its art", () => {
    wrap(<CategoryTile category={music} />);
    const link = screen.getByRole("link", { name: /Music/ });
    expect(link.getAttribute("href")).toBe("/directory/music");
    expect(link.querySelector("img")?.getAttribute("src")).toBe(music.image_url);
    expect(link.textContent).toContain("12 viewers · 2 live");
  });
});

describe("search box", () => {
  const answers = (call: Call) => {
    const q = new URL(call.url, "http://x").searchParams.get("q") ?? "";
    const channels = [live("speedy", 5), channel("speedo")].filter((c) => c.name.startsWith(q));
    return { status: 200, body: results(q, channels, q.startsWith("sp") ? [category("speedrunning", "Speedrunning")] : []) };
  };

  it("asks once after typing stops and offers categories, channels and the results page", async () => {
    const s = serve({ "GET /search?q=s&limit=5": answers, "GET /search?q=sp&limit=5": answers, "GET /search?q=spe&limit=5": answers });
    renderSearchBox(s);
    const box = screen.getByRole("combobox", { name: "Search channels and categories" });
    expect(box.getAttribute("aria-expanded")).toBe("false");
    fireEvent.focus(box);
    for (const text of ["s", "sp", "spe"]) fireEvent.change(box, { target: { value: text } });
    const list = await screen.findByRole("listbox", { name: "Suggestions" });
    await waitFor(() => expect(within(list).getAllByRole("option")).toHaveLength(4));
    expect(s.sent().filter((x) => x.startsWith("GET /search"))).toEqual(["GET /search?q=spe&limit=5"]);
    const labels = within(list)
      .getAllByRole("option")
      .map((o) => o.textContent);
    expect(labels[0]).toContain("Speedrunning");
    expect(labels[1]).toContain("Speedy");
    expect(labels[3]).toContain("Search for “spe”");
    expect(box.getAttribute("aria-expanded")).toBe("true");
    expect(box.getAttribute("aria-controls")).toBe(list.id);
    await screen.findByText("3 suggestions");
  });

  it("moves with the arrow keys and opens the highlighted suggestion with Enter", async () => {
    const s = serve({ "GET /search?q=speed&limit=5": answers });
    renderSearchBox(s);
    const box = screen.getByRole("combobox");
    fireEvent.focus(box);
    fireEvent.change(box, { target: { value: "speed" } });
    await waitFor(() => expect(screen.getAllByRole("option")).toHaveLength(4));
    expect(box.getAttribute("aria-activedescendant")).toBeNull();
    fireEvent.keyDown(box, { key: "ArrowDown" });
    fireEvent.keyDown(box, { key: "ArrowDown" });
    const active = box.getAttribute("aria-activedescendant");
    const option = document.getElementById(active!)!;
    expect(option.getAttribute("aria-selected")).toBe("true");
    expect(option.textContent).toContain("Speedy");
    fireEvent.keyDown(box, { key: "ArrowUp" });
    fireEvent.keyDown(box, { key: "ArrowUp" }); // wraps to the last: the results page
    expect(document.getElementById(box.getAttribute("aria-activedescendant")!)!.textContent).toContain("Search for");
    fireEvent.keyDown(box, { key: "ArrowDown" }); // and back to the first
    fireEvent.keyDown(box, { key: "ArrowDown" });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(screen.getByTestId("where").textContent).toBe("/speedy");
    expect((box as HTMLInputElement).value).toBe("");
    expect(box.getAttribute("aria-expanded")).toBe("false");
  });

  it("goes to the results page on Enter, and Escape closes then clears", async () => {
    const s = serve({ "GET /search?q=sp+%22x&limit=5": () => ({ status: 200, body: results("sp x", []) }) });
    renderSearchBox(s);
    const box = screen.getByRole("combobox") as HTMLInputElement;
    fireEvent.focus(box);
    fireEvent.change(box, { target: { value: ' sp "x ' } });
    await waitFor(() => expect(screen.getAllByRole("option")).toHaveLength(1));
    fireEvent.keyDown(box, { key: "Escape" });
    expect(box.getAttribute("aria-expanded")).toBe("false");
    expect(box.value).toBe(' sp "x ');
    fireEvent.keyDown(box, { key: "Escape" });
    expect(box.value).toBe("");
    fireEvent.change(box, { target: { value: 'sp "x' } });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(screen.getByTestId("where").textContent).toBe("/search?q=sp%20%22x");
  });

  it("chooses a suggestion with the mouse", async () => {
    const s = serve({ "GET /search?q=sp&limit=5": answers });
    renderSearchBox(s);
    const box = screen.getByRole("combobox");
    fireEvent.focus(box);
    fireEvent.change(box, { target: { value: "sp" } });
    await waitFor(() => expect(screen.getAllByRole("option")).toHaveLength(4));
    fireEvent.mouseDown(screen.getAllByRole("option")[0]!);
    expect(screen.getByTestId("where").textContent).toBe("/directory/speedrunning");
  });

  it("builds its options from an answer", () => {
    const options = suggestionsFor("x", results("x", [live("a", 3, { title: "" })], [music]));
    expect(options.map((o) => o.to)).toEqual(["/directory/music", "/a", "/search?q=x"]);
    expect(options[0]!.detail).toBe("Category · 12 viewers");
    expect(options[1]!.detail).toBe("Live · 3 viewers");
    expect(suggestionsFor("", null)).toEqual([]);
  });
});

describe("discovery pages", () => {
  it("home: live channels by viewers, categories, offline channels", async () => {
    const server = serve({
      "GET /channels": { channels: [live("few", 2), live("many", 40), channel("off")] },
      "GET /categories": { categories: [music, art] },
    });
    renderAt("/", server);
    const grid = await screen.findByTestId("live-channels");
    const names = within(grid)
      .getAllByTestId("channel-card")
      .map((c) => c.getAttribute("data-channel"));
    expect(names).toEqual(["many", "few"]);
    expect(within(grid).getAllByTestId("viewer-count")[0]!.textContent).toBe("40 viewers");
    expect(within(grid).getAllByTestId("thumbnail-placeholder")).toHaveLength(2);
    expect(screen.getByTestId("offline-channels").textContent).toContain("Off");
    await screen.findByRole("link", { name: /^Music/ });
    expect(screen.getByRole("link", { name: "Browse all categories" }).getAttribute("href")).toBe("/directory");
  });

  it("home: a signed-in viewer's events socket updates titles, tags and viewers in place", async () => {
    const server = serve(
      { "GET /channels": { channels: [live("few", 2), live("many", 40)] }, "GET /me/notifications": { notifications: [], unread: 0 } },
      true,
      user("viewer", 9),
    );
    renderAt("/", server);
    await screen.findByTestId("live-channels");
    const events = await acceptedSocket("/ws/events");
    const calls = server.sent().filter((x) => x === "GET /channels").length;
    act(() =>
      events.push({ type: "channel", name: "few", live: true, title: "Now with tags", category: "", viewers: 99, tags: ["new"] }),
    );
    const cards = () =>
      within(screen.getByTestId("live-channels"))
        .getAllByTestId("channel-card")
        .map((c) => c.getAttribute("data-channel"));
    await waitFor(() => expect(cards()).toEqual(["few", "many"]));
    const first = screen.getAllByTestId("channel-card")[0]!;
    expect(first.textContent).toContain("Now with tags");
    expect(first.textContent).toContain("99 viewers");
    expect(within(first).getByRole("link", { name: "new" })).toBeTruthy();
    // in place: no new request for the list
    expect(server.sent().filter((x) => x === "GET /channels").length).toBe(calls);
  });

  it("directory lists the categories; a category page its live channels", async () => {
    const server = serve({
      "GET /categories": { categories: [music, art] },
      "GET /categories/music?limit=24&live=true": {
        category: music,
        channels: [live("dj", 3, { category: "Music", category_slug: "music" }), live("band", 9)],
        next_offset: 2,
      },
      "GET /categories/music?limit=24&offset=2&live=true": { category: music, channels: [live("choir", 1)], next_offset: null },
    });
    renderAt("/directory", server);
    const tiles = await screen.findAllByTestId("category-tile");
    expect(tiles.map((t) => t.getAttribute("data-slug"))).toEqual(["music", "art"]);
    fireEvent.click(within(tiles[0]!).getByRole("link"));
    await screen.findByRole("heading", { name: "Music", level: 1 });
    expect(screen.getByTestId("category-stats").textContent).toBe("2 live channels · 12 viewers");
    const names = () =>
      within(screen.getByTestId("category-channels"))
        .getAllByTestId("channel-card")
        .map((c) => c.getAttribute("data-channel"));
    expect(names()).toEqual(["band", "dj"]);
    fireEvent.click(screen.getByRole("button", { name: "Show more" }));
    await waitFor(() => expect(names()).toEqual(["band", "dj", "choir"]));
    expect(screen.queryByRole("button", { name: "Show more" })).toBeNull();
  });

  it("an unknown category is not found", async () => {
    renderAt("/directory/nope", serve({}));
    await screen.findByText("There is no such category.");
  });

  it("a category with nobody live says so", async () => {
    const server = serve({
      "GET /categories/art?limit=24&live=true": { category: art, channels: [], next_offset: null },
    });
    renderAt("/directory/art", server);
    await screen.findByText("Nobody is streaming Art right now.");
  });

  it("search results and the channels of a tag", async () => {
    const server = serve({
      "GET /search?q=chess&limit=24": results("chess", [live("kasparov", 7), channel("carlsen")], [category("chess", "Chess")]),
      "GET /tags/blitz%20chess?limit=24": { tag: "blitz chess", channels: [channel("carlsen")], next_offset: null },
      "GET /search?q=zzz&limit=24": results("zzz", []),
    });
    renderAt("/search?q=chess", server);
    await screen.findByRole("heading", { name: "Results for “chess”" });
    const cards = await screen.findAllByTestId("channel-card");
    expect(cards.map((c) => c.getAttribute("data-channel"))).toEqual(["kasparov", "carlsen"]);
    expect(screen.getByRole("link", { name: /Chess/ }).getAttribute("href")).toBe("/directory/chess");
    cleanup();
    renderAt("/search?tag=blitz%20chess", server);
    await screen.findByRole("heading", { name: "Channels tagged blitz chess" });
    expect((await screen.findAllByTestId("channel-card")).map((c) => c.getAttribute("data-channel"))).toEqual(["carlsen"]);
    cleanup();
    renderAt("/search?q=zzz", server);
    await screen.findByText("No channel or category matches “zzz”.");
  });
});

describe("dashboard stream info", () => {
  const bob = channel("bob", { category: "Art", category_slug: "art", tags: ["one"] });

  function dashboard() {
    return serve(
      {
        "GET /channels/bob": bob,
        "GET /categories": { categories: [music, art] },
        "PATCH /channels/bob": (call: Call) => {
          const body = call.body as { category: string | null; tags: string[] };
          const picked = [music, art].find((c) => c.slug === body.category);
          return { status: 200, body: { ...bob, ...body, category: picked?.name ?? "", category_slug: picked?.slug ?? null } };
        },
      },
      true,
      user("bob", 2),
    );
  }

  it("picks a category from the list and edits tags as chips", async () => {
    const server = dashboard();
    renderAt("/dashboard", server);
    const select = (await screen.findByLabelText("Category")) as HTMLSelectElement;
    await waitFor(() => expect(select.options.length).toBe(3));
    expect([...select.options].map((o) => o.textContent)).toEqual(["No category", "Art", "Music"]);
    expect(select.value).toBe("art");
    fireEvent.change(select, { target: { value: "music" } });
    const input = screen.getByLabelText("Tags");
    fireEvent.change(input, { target: { value: "Speed  Run," } });
    expect(within(screen.getByRole("list", { name: "Added" })).getAllByRole("listitem").map((li) => li.firstChild?.textContent)).toEqual([
      "one",
      "Speed Run",
    ]);
    fireEvent.change(input, { target: { value: "🎮" } });
    fireEvent.keyDown(input, { key: "Enter" });
    expect((await screen.findByText(/A tag may only use/)).getAttribute("role")).toBe("alert");
    fireEvent.click(screen.getByRole("button", { name: "Remove tag one" }));
    fireEvent.change(input, { target: { value: "lofi" } }); // still in the box when saving
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");
    expect(server.find("PATCH /channels/bob")?.body).toMatchObject({ category: "music", tags: ["Speed Run", "lofi"] });
  });

  it("clears the category with No category", async () => {
    const server = dashboard();
    renderAt("/dashboard", server);
    const select = (await screen.findByLabelText("Category")) as HTMLSelectElement;
    fireEvent.change(select, { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Saved.");
    expect(server.find("PATCH /channels/bob")?.body).toMatchObject({ category: null });
  });
});
