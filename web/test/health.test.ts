import { describe, expect, it } from "vitest";
import {
  addSample,
  formatSpeed,
  HISTORY_MS,
  ladderState,
  latest,
  series,
  sparklinePath,
  type HealthSample,
} from "../src/lib/health";
import { liveHealth, rendition } from "./helpers";

describe("health history", () => {
  it("keeps two minutes of samples, oldest first, without touching the input", () => {
    let h: HealthSample[] = [];
    for (let t = 0; t <= 130_000; t += 2000) h = addSample(h, liveHealth(), t);
    expect(h[0]!.at).toBe(130_000 - HISTORY_MS);
    expect(h.at(-1)!.at).toBe(130_000);
    const before = [...h];
    const next = addSample(h, liveHealth(), 132_000);
    expect(h).toEqual(before);
    expect(next.length).toBe(h.length);
  });

  it("adds nothing for an answer that is not live", () => {
    const h = addSample([], liveHealth(), 0);
    expect(addSample(h, { live: false }, 2000)).toEqual(h);
  });

  it("turns the dropped-frame counter into drops per sample, with no step across a reset", () => {
    let h: HealthSample[] = [];
    for (const [t, dropped] of [
      [0, 4],
      [2000, 4],
      [4000, 10],
      [6000, 2], // the rung restarted: its counter went back
      [8000, 3],
    ] as const) {
      h = addSample(h, liveHealth({}, [rendition("720p", { dropped_frames: dropped })]), t);
    }
    expect(series(h, (s) => s.renditions["720p"]?.droppedDelta ?? null).values).toEqual([null, 0, 6, null, 1]);
  });

  it("keeps unknown and non-finite figures as gaps", () => {
    const ingest = { ...liveHealth().ingest!, bitrate_kbps: null, fps: Number.NaN };
    const h = addSample([], liveHealth({ ingest }), 0);
    expect(h[0]!.bitrateKbps).toBeNull();
    expect(h[0]!.fps).toBeNull();
  });
});

describe("sparkline path", () => {
  it("spans the two-minute window, scaled to the largest value, with gaps for nulls", () => {
    const end = 200_000;
    const s = { at: [end - HISTORY_MS, end - 60_000, end - 30_000, end], values: [0, 50, null, 100] };
    expect(sparklinePath(s, end, 240, 40)).toBe("M0 40 L120 20 M240 0");
  });

  it("is empty without data and respects the floor", () => {
    expect(sparklinePath({ at: [1], values: [null] }, 1, 240, 40)).toBe("");
    expect(sparklinePath({ at: [0], values: [1] }, 0, 240, 40, 4)).toBe("M240 30");
  });

  it("finds the latest known value", () => {
    expect(latest({ at: [1, 2, 3], values: [5, 7, null] })).toBe(7);
    expect(latest({ at: [], values: [] })).toBeNull();
  });
});

describe("ladder state in words", () => {
  it("names the qualities viewers get while running", () => {
    const h = liveHealth({}, [rendition("source"), rendition("720p"), rendition("360p")]);
    expect(ladderState(h)).toBe("Running: viewers can choose source, 720p, 360p");
  });

  it("says why it is not running", () => {
    const waiting = liveHealth({
      ladder: { state: "waiting", reason: "all 2 ladder slots are in use", decode_cpu_seconds: 0, dropped_packets: 0, decoder_restarts: 0 },
    });
    expect(ladderState(waiting)).toBe(
      "Waiting: all 2 ladder slots are in use. Viewers get the source quality only until then.",
    );
    const slot = liveHealth({
      ladder: { state: "waiting", reason: "waiting for a free encoder slot.", decode_cpu_seconds: 0, dropped_packets: 0, decoder_restarts: 0 },
    });
    expect(ladderState(slot)).toBe("Waiting for a free encoder slot. Viewers get the source quality only until then.");
    const unsaid = liveHealth({
      ladder: { state: "waiting", reason: null, decode_cpu_seconds: 0, dropped_packets: 0, decoder_restarts: 0 },
    });
    expect(ladderState(unsaid)).toBe("Waiting: for a free encoder slot. Viewers get the source quality only until then.");
    const off = liveHealth({
      ladder: { state: "off", reason: null, decode_cpu_seconds: 0, dropped_packets: 0, decoder_restarts: 0 },
    });
    expect(ladderState(off)).toBe("Off: source quality only");
    const broken = liveHealth({
      ladder: { state: "unavailable", reason: "PyAV has no libx264", decode_cpu_seconds: 0, dropped_packets: 0, decoder_restarts: 0 },
    });
    expect(ladderState(broken)).toBe("Unavailable: PyAV has no libx264. Viewers get the source quality only.");
  });

  it("formats encode speeds", () => {
    expect(formatSpeed({ name: "source", encode_speed: null })).toBe("copied");
    expect(formatSpeed({ name: "720p", encode_speed: 1.234 })).toBe("1.23×");
    expect(formatSpeed({ name: "720p", encode_speed: null })).toBe("–");
  });
});
