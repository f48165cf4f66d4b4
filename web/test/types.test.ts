import { describe, expect, it } from "vitest";
import {
  ingestEnabledOf,
  normalizeChannel,
  normalizeChannelList,
  normalizeMe,
  rtmpServerUrl,
  splitTags,
  streamKeyOf,
} from "../src/api/types";
import { safeNext } from "../src/pages/AuthPages";
import { avatarProblem } from "../src/pages/Settings";

describe("API normalisers", () => {
  it("reads a full live channel", () => {
    const c = normalizeChannel({
      name: "alice",
      display_name: "Alice",
      title: "Speedrun",
      description: "d",
      category: "Games",
      tags: ["a", "b"],
      live: true,
      stream: {
        started_at: "2025-01-01T00:00:00Z",
        stats: { video_codec: "h264", width: 1280, height: 720, fps: 30, keyframe_interval_s: 8 },
      },
    });
    expect(c?.live).toBe(true);
    expect(c?.stream?.stats?.keyframe_interval_s).toBe(8);
    expect(c?.stream?.stats?.audio_codec).toBeNull();
    expect(c?.tags).toEqual(["a", "b"]);
  });

  it("fills defaults for a sparse offline channel and drops junk", () => {
    const c = normalizeChannel({ name: "bob", live: false, stream: { started_at: "x" } });
    expect(c).toEqual({
      name: "bob",
      display_name: "bob",
      title: "",
      description: "",
      category: "",
      tags: [],
      live: false,
      stream: null,
    });
    expect(normalizeChannel({ title: "no name" })).toBeNull();
    expect(normalizeChannel("x")).toBeNull();
  });

  it("accepts wrapped lists and puts live channels first, stable otherwise", () => {
    const list = [
      { name: "a", live: false },
      { name: "b", live: true },
      { name: "c", live: false },
      { name: "d", live: true },
    ];
    const names = (v: unknown) => normalizeChannelList(v).map((c) => c.name);
    expect(names(list)).toEqual(["b", "d", "a", "c"]);
    expect(names({ channels: list })).toEqual(["b", "d", "a", "c"]);
    expect(names({ items: list })).toEqual(["b", "d", "a", "c"]);
    expect(names({ nothing: true })).toEqual([]);
  });

  it("reads me, stream keys and the ingest flag", () => {
    expect(normalizeMe({ username: "alice", email: "a@x" })?.display_name).toBe("alice");
    expect(normalizeMe({ user: { username: "bob" } })?.username).toBe("bob");
    expect(normalizeMe({})).toBeNull();
    expect(streamKeyOf({ stream_key: "live_abc" })).toBe("live_abc");
    expect(streamKeyOf({ key: "k" })).toBe("k");
    expect(streamKeyOf({})).toBeNull();
    expect(ingestEnabledOf({ stream_key: "k", ingest_enabled: false })).toBe(false);
    expect(ingestEnabledOf({ stream_key: "k" })).toBeUndefined();
  });

  it("splits tags", () => {
    expect(splitTags(" a, b ,,a, c ")).toEqual(["a", "b", "c"]);
  });
});

describe("rtmpServerUrl", () => {
  it("prefers the server's own rtmp_url", () => {
    expect(rtmpServerUrl({ rtmp_url: "rtmp://live.example:1935/live/" }, "x")).toBe(
      "rtmp://live.example:1935/live",
    );
  });

  it("builds from public_url and rtmp_port", () => {
    expect(rtmpServerUrl({ public_url: "https://tv.example", rtmp_port: 1940 }, "x")).toBe(
      "rtmp://tv.example:1940/live",
    );
  });

  it("falls back to the page host on port 1935", () => {
    expect(rtmpServerUrl(null, "192.0.2.7")).toBe("rtmp://192.0.2.7:1935/live");
    expect(rtmpServerUrl({}, "::1")).toBe("rtmp://[::1]:1935/live");
  });
});

describe("safeNext", () => {
  it("follows only same-site paths", () => {
    expect(safeNext("/dashboard", "/")).toBe("/dashboard");
    expect(safeNext("//evil.example", "/")).toBe("/");
    expect(safeNext("https://evil.example", "/")).toBe("/");
    expect(safeNext("/\\evil.example", "/")).toBe("/");
    expect(safeNext(null, "/x")).toBe("/x");
  });
});

describe("avatarProblem", () => {
  it("accepts small images only", () => {
    expect(avatarProblem({ type: "image/png", size: 1000 })).toBeNull();
    expect(avatarProblem({ type: "image/svg+xml", size: 10 })).toMatch(/PNG/);
    expect(avatarProblem({ type: "image/jpeg", size: 3 * 1024 * 1024 })).toMatch(/2 MB/);
  });
});
