import { describe, expect, it } from "vitest";
import {
  formatBehind,
  formatBitrate,
  formatFps,
  formatResolution,
  formatUptime,
  keyframeWarning,
  levelLabel,
  renditionName,
} from "../src/lib/format";
import { behindLiveSeconds } from "../src/lib/behindLive";

describe("formatters", () => {
  it("formats the behind-live figure", () => {
    expect(formatBehind(1.234)).toBe("1.2 s behind");
    expect(formatBehind(0.01)).toBe("live");
    expect(formatBehind(-2)).toBe("live");
    expect(formatBehind(125)).toBe("2 min 5 s behind");
    expect(formatBehind(null)).toBe("");
    expect(formatBehind(Number.NaN)).toBe("");
  });

  it("formats bitrates, resolutions and frame rates", () => {
    expect(formatBitrate(2500)).toBe("2.5 Mb/s");
    expect(formatBitrate(812.4)).toBe("812 kb/s");
    expect(formatBitrate(null)).toBe("–");
    expect(formatResolution(1280, 720)).toBe("1280×720");
    expect(formatResolution(null, 720)).toBe("–");
    expect(formatFps(30)).toBe("30");
    expect(formatFps(29.97)).toBe("29.97");
  });

  it("formats uptime", () => {
    const start = "2025-01-01T12:00:00Z";
    const t = Date.parse(start);
    expect(formatUptime(start, t + 42_000)).toBe("42 s");
    expect(formatUptime(start, t + 12 * 60_000)).toBe("12 min");
    expect(formatUptime(start, t + 125 * 60_000)).toBe("2 h 05 min");
    expect(formatUptime(null, t)).toBe("");
    expect(formatUptime("nope", t)).toBe("");
  });

  it("labels quality levels", () => {
    expect(levelLabel({ height: 720, name: "720p" })).toBe("720p");
    expect(levelLabel({ height: 480 })).toBe("480p");
    expect(levelLabel({ name: "source", height: 1080 })).toBe("Source (1080p)");
    expect(levelLabel({ bitrate: 1_500_000 })).toBe("1.5 Mb/s");
  });

  it("names a level after its URI's folder when the playlist gives no NAME", () => {
    const at = (rendition: string) => `http://tv.example/hls/alice/${rendition}/index.m3u8`;
    expect(levelLabel({ height: 1080, uri: at("source") })).toBe("Source (1080p)");
    expect(levelLabel({ height: 720, uri: at("720p") })).toBe("720p");
    expect(levelLabel({ height: 480, url: [at("480p") + "?_HLS_msn=3"] })).toBe("480p");
    expect(levelLabel({ uri: at("source") })).toBe("Source");
    // odd folder names fall back to the height
    expect(levelLabel({ height: 360, uri: "http://x/hls/a/<b>/index.m3u8" })).toBe("360p");
    expect(renditionName({ uri: "index.m3u8" })).toBeNull();
    expect(renditionName({ name: "Hi there", uri: at("720p") })).toBe("720p");
  });

  it("warns only above a 2 s keyframe interval", () => {
    expect(keyframeWarning(null)).toBeNull();
    expect(keyframeWarning(1)).toBeNull();
    expect(keyframeWarning(2)).toBeNull();
    expect(keyframeWarning(8.3)).toMatch(/8\.3 s/);
  });
});

describe("behindLiveSeconds", () => {
  it("is server time minus the program date at the playhead", () => {
    const pdt = new Date(Date.UTC(2025, 0, 1, 12, 0, 0, 0));
    expect(behindLiveSeconds(pdt, pdt.getTime() + 1_250)).toBeCloseTo(1.25);
  });

  it("is null with nothing playing and never negative", () => {
    expect(behindLiveSeconds(null, 1)).toBeNull();
    expect(behindLiveSeconds(new Date(Number.NaN), 1)).toBeNull();
    const pdt = new Date(10_000);
    expect(behindLiveSeconds(pdt, 9_000)).toBe(0);
  });
});
