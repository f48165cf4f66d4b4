import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, recordingTitle, recordingWarning } from "../src/api/recordings";

describe("recordings helpers", () => {
  it("formats durations and sizes", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(65)).toBe("1:05");
    expect(formatDuration(3725.4)).toBe("1:02:05");
    expect(formatBytes(512)).toBe("512 bytes");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(10 * 2 ** 30)).toBe("10.0 GiB");
  });

  it("names untitled recordings and warns about stopped and failed ones", () => {
    expect(recordingTitle({ title: "Finals", started_at: "2026-01-31T12:00:00.000Z" })).toBe("Finals");
    expect(recordingTitle({ title: "", started_at: "2026-01-31T12:00:00.000Z" })).toMatch(/^Broadcast of /);
    expect(recordingWarning({ state: "ended", reason: null })).toBeNull();
    expect(recordingWarning({ state: "recording", reason: null })).toBeNull();
    expect(recordingWarning({ state: "stopped", reason: "the disk is full" })).toBe(
      "Recording stopped early: the disk is full.",
    );
    expect(recordingWarning({ state: "failed", reason: null })).toBe("Recording failed: nothing was recorded.");
  });
});
