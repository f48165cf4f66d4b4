// Shared helpers for the browser scripts: launch the apt Chromium through playwright-core
// (no browser download), collect page errors, take screenshots.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

/** Flags for a quiet, reproducible headless Chromium. The autoplay policy is left at its default. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Launch Chromium (default /usr/bin/chromium, override with CHROMIUM) with a fresh profile. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
}

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback === undefined) throw new Error(`missing environment variable ${name}`);
    return fallback;
  }
  return v;
}

/** A page that records uncaught errors and console errors. */
export async function newPage(context, errors) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`pageerror on ${page.url()}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console on ${page.url()}: ${m.text()}`);
  });
  return page;
}

export async function shot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: true });
  return path;
}

export function log(...parts) {
  process.stderr.write(`[e2e] ${parts.join(" ")}\n`);
}

/**
 * Fill in and submit the register form, then wait for the dashboard it lands on.
 * `timeout` (ms) bounds the two waits; without it Playwright's default (30 s) applies.
 */
export async function register(page, base, username, password, timeout) {
  const wait = timeout === undefined ? {} : { timeout };
  await page.goto(`${base}/register`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Email").fill(`${username}@example.com`);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Repeat password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${base}/dashboard`, wait);
  await page.getByTestId("dashboard-status").waitFor(wait);
}

/** Wait until the page's first <video> has played `seconds` of media; returns its currentTime. */
export async function waitForPlayback(page, seconds, timeoutMs) {
  await page.waitForSelector("video", { timeout: timeoutMs });
  const start = await page.evaluate(() => document.querySelector("video")?.currentTime ?? 0);
  await page.waitForFunction(
    ([from, need]) => {
      const v = document.querySelector("video");
      return !!v && !v.paused && v.currentTime - from >= need;
    },
    [start, seconds],
    { timeout: timeoutMs, polling: 250 },
  );
  return page.evaluate(() => document.querySelector("video")?.currentTime ?? 0);
}

/** The labels of the player's quality menu, in order ("Auto (720p)", "Source (1080p)", "720p"...). */
export async function qualityOptions(page) {
  const menu = page.getByRole("combobox", { name: "Quality" });
  await menu.waitFor({ timeout: 30_000 });
  return menu.evaluate((el) => [...el.options].map((o) => o.textContent ?? ""));
}

/**
 * Choose a quality in the player's menu by name, case-insensitively: "720p", "source" (matches
 * "Source (1080p)"), "auto" (matches "Auto (…)"). Returns the option's label; throws when the
 * menu has no such entry.
 */
export async function pickQuality(page, name) {
  const menu = page.getByRole("combobox", { name: "Quality" });
  await menu.waitFor({ timeout: 30_000 });
  const want = name.toLowerCase();
  const options = await menu.evaluate((el) => [...el.options].map((o) => ({ value: o.value, label: o.textContent ?? "" })));
  const found = options.find((o) => {
    const label = o.label.toLowerCase();
    return label === want || label.startsWith(`${want} (`);
  });
  if (!found) throw new Error(`no quality "${name}" in the menu: ${options.map((o) => o.label).join(", ")}`);
  await menu.selectOption(found.value);
  return found.label;
}

/** Count the video's stalls (`waiting` events) from now on; read them with `playbackState`. */
export async function countStalls(page) {
  await page.evaluate(() => {
    const v = document.querySelector("video");
    if (!v || v.dataset.stallCounter) return;
    v.dataset.stallCounter = "1";
    v.dataset.stalls = "0";
    v.addEventListener("waiting", () => {
      v.dataset.stalls = String(Number(v.dataset.stalls) + 1);
    });
  });
}

/**
 * What the player shows now: the video's currentTime, whether it is paused, its decoded height,
 * the stalls counted since `countStalls`, and the hls.js level in use (index and menu label,
 * from the player's `data-level` / `data-level-label`).
 */
export async function playbackState(page) {
  return page.evaluate(() => {
    const v = document.querySelector("video");
    const box = document.querySelector(".player");
    return {
      currentTime: v?.currentTime ?? 0,
      paused: v?.paused ?? true,
      videoHeight: v?.videoHeight ?? 0,
      stalls: Number(v?.dataset.stalls ?? 0),
      level: Number(box?.getAttribute("data-level") ?? -1),
      levelLabel: box?.getAttribute("data-level-label") ?? "",
    };
  });
}

/**
 * Pick quality `name`, wait until hls.js plays it (not for "auto"), then watch `seconds` of
 * playback. Returns the label picked, how long the switch took (ms), and the playback state
 * before and after the watch (currentTime progress = after.currentTime - before.currentTime).
 */
export async function switchAndWatch(page, name, seconds = 4, timeoutMs = 30_000) {
  const asked = Date.now();
  const label = await pickQuality(page, name);
  if (!label.toLowerCase().startsWith("auto")) {
    await page.waitForFunction(
      (want) => document.querySelector(".player")?.getAttribute("data-level-label") === want,
      label,
      { timeout: timeoutMs, polling: 100 },
    );
  }
  const switchMs = Date.now() - asked;
  const before = await playbackState(page);
  const maxFreezeMs = await longestFreeze(page, seconds * 1000);
  const after = await playbackState(page);
  return { name, label, switchMs, before, after, progress: after.currentTime - before.currentTime, maxFreezeMs };
}

/**
 * Watch the video for `ms` and return the longest time (ms) its currentTime stood still: a
 * stall as the viewer sees it (a `waiting` event also fires on hls.js's small gap jumps).
 */
export async function longestFreeze(page, ms) {
  return page.evaluate(async (duration) => {
    const v = document.querySelector("video");
    if (!v) return duration;
    const start = performance.now();
    let last = v.currentTime;
    let moved = start;
    let longest = 0;
    while (performance.now() - start < duration) {
      await new Promise((r) => setTimeout(r, 100));
      const now = performance.now();
      if (v.currentTime !== last) {
        last = v.currentTime;
        moved = now;
      }
      longest = Math.max(longest, now - moved);
    }
    return Math.round(longest);
  }, ms);
}

/** The behind-live figure in seconds (null while not shown). */
export async function behindLive(page) {
  const raw = await page.getAttribute('[data-testid="behind-live"]', "data-seconds");
  return raw ? Number(raw) : null;
}

/** True when the page scrolls sideways (a layout wider than the viewport). */
export async function overflowsX(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

/** Print the machine-readable result line the pytest wrapper reads. */
export function result(obj) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

/** On failure: screenshot every open page and return the alerts they show. */
export async function failureReport(browser, dir, name) {
  const notes = [];
  let i = 0;
  for (const context of browser.contexts()) {
    for (const page of context.pages()) {
      i += 1;
      try {
        await shot(page, dir, `failure-${name}-${i}`);
        const alerts = await page.locator('[role="alert"]').allTextContents();
        notes.push(`page ${i} ${page.url()} alerts: ${JSON.stringify(alerts)}`);
      } catch (e) {
        notes.push(`page ${i}: no screenshot (${e instanceof Error ? e.message : e})`);
      }
    }
  }
  return notes;
}

/** Record a scenario's failure in `errors`: its stack, then a screenshot and the alerts of every
 * open page (see failureReport). */
export async function reportFailure(errors, e, browser, dir, name) {
  errors.push(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  errors.push(...(await failureReport(browser, dir, name)));
}

/** Print the result line and end the process, with status 1 when the scenario failed or a
 * page threw. */
export function finish(checks, errors) {
  result({ checks, errors });
  process.exit(errors.some((e) => e.startsWith("failed:") || e.startsWith("pageerror")) ? 1 : 0);
}

/**
 * Buffer stdin's lines from now on (the caller may answer before anyone waits) and return
 * `{ waitForLine(want, timeoutMs), close() }`: waitForLine resolves once the line `want` came.
 */
export function stdinLines() {
  const lines = createInterface({ input: process.stdin });
  const received = [];
  lines.on("line", (l) => received.push(l.trim()));
  return {
    async waitForLine(want, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!received.includes(want)) {
        if (Date.now() > deadline) throw new Error(`no "${want}" on stdin`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: () => lines.close(),
  };
}
