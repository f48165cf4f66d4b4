import { describe, expect, it } from "vitest";
import { pageRtmpUrl } from "../src/api/types";
import { safeNext } from "../src/pages/AuthPages";
import { avatarProblem } from "../src/pages/Settings";

describe("small helpers", () => {
  it("shows the page's host on port 1935 until the server says its RTMP URL", () => {
    expect(pageRtmpUrl("192.0.2.7")).toBe("rtmp://192.0.2.7:1935/live");
    expect(pageRtmpUrl("::1")).toBe("rtmp://[::1]:1935/live");
  });
});

describe("safeNext", () => {
  // `next` as URLSearchParams.get gives it: percent-decoded once
  const param = (raw: string) => new URLSearchParams(`next=${raw}`).get("next");

  it("follows same-origin relative paths", () => {
    expect(safeNext("/dashboard", "/")).toBe("/dashboard");
    expect(safeNext("/alice?x=1#chat", "/")).toBe("/alice?x=1#chat");
    expect(safeNext(param("%2Fsettings"), "/")).toBe("/settings");
    expect(safeNext(null, "/x")).toBe("/x");
    expect(safeNext("", "/x")).toBe("/x");
  });

  it.each([
    ["a tab after the slash", "/%09/evil.example"],
    ["a newline after the slash", "/%0a/evil.example"],
    ["a carriage return", "/%0D/evil.example"],
    ["a double-encoded tab", "/%2509/evil.example"],
    ["a triple-encoded tab", "/%252509/evil.example"],
    ["a protocol-relative URL", "//evil.example"],
    ["an encoded protocol-relative URL", "%2F%2Fevil.example"],
    ["an encoded second slash", "/%2Fevil.example"],
    ["a backslash", "/%5Cevil.example"],
    ["a double-encoded backslash", "/%255Cevil.example"],
    ["an absolute URL", "https://evil.example/"],
    ["an encoded absolute URL", "https%3A%2F%2Fevil.example"],
    ["a javascript: URL", "javascript:alert(1)"],
    ["an encoded javascript: URL", "javascript%3Aalert(1)"],
    ["a relative path", "dashboard"],
    ["a leading space", "%20//evil.example"],
    ["a broken escape", "/%E0%A4%A"],
  ])("refuses %s", (_why, raw) => {
    expect(safeNext(param(raw), "/")).toBe("/");
  });

  it("refuses the raw forms too", () => {
    for (const next of ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "\\\\evil.example"]) {
      expect(safeNext(next, "/")).toBe("/");
    }
  });
});

describe("avatarProblem", () => {
  it("accepts small images only", () => {
    expect(avatarProblem({ type: "image/png", size: 1000 })).toBeNull();
    expect(avatarProblem({ type: "image/svg+xml", size: 10 })).toMatch(/PNG/);
    expect(avatarProblem({ type: "image/jpeg", size: 3 * 1024 * 1024 })).toMatch(/2 MB/);
  });
});
