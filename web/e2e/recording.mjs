// Watch a recording: open the channel page, follow its first past broadcast to the recording
// page, play it, then seek to 60 % of its length and see playback go on from there.
// Env: BASE_URL, CHANNEL, ARTIFACTS. Prints RESULT {checks: {listed, title, url, duration,
// height, played, seekTo, landed, afterSeek}, errors}.
import { env, finish, launch, log, newPage, reportFailure, shot } from "./lib.mjs";

const base = env("BASE_URL");
const channel = env("CHANNEL");
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};

const videoTime = (page) => page.evaluate(() => document.querySelector("video")?.currentTime ?? -1);

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context, errors);
  await page.goto(`${base}/${channel}`);
  const list = page.getByTestId("past-broadcasts");
  await list.waitFor({ timeout: 30_000 });
  checks.listed = await list.getByRole("link").allTextContents();
  await list.getByRole("link").first().click();
  await page.waitForURL(/\/videos\/\d+$/, { timeout: 10_000 });
  checks.url = page.url().replace(base, "");
  checks.title = await page.getByTestId("recording-title").textContent();
  const video = page.getByTestId("vod-video");
  await video.waitFor({ timeout: 30_000 });
  // the whole length is known from the VOD playlist before playing
  await page.waitForFunction(
    () => {
      const v = document.querySelector("video");
      return v && Number.isFinite(v.duration) && v.duration > 0;
    },
    null,
    { timeout: 30_000 },
  );
  checks.duration = await page.evaluate(() => document.querySelector("video").duration);
  await page.evaluate(() => {
    const v = document.querySelector("video");
    v.muted = true;
    return v.play();
  });
  await page.waitForFunction(() => (document.querySelector("video")?.currentTime ?? 0) > 1, null, {
    timeout: 30_000,
  });
  checks.played = await videoTime(page);
  checks.height = await page.evaluate(() => document.querySelector("video").videoHeight);
  // seek far ahead, past what was buffered at start
  checks.seekTo = Math.round(checks.duration * 0.6 * 10) / 10;
  await page.evaluate(
    (to) =>
      new Promise((resolve) => {
        const v = document.querySelector("video");
        v.addEventListener("seeked", () => resolve(undefined), { once: true });
        v.currentTime = to;
      }),
    checks.seekTo,
  );
  checks.landed = await videoTime(page);
  await page.waitForFunction(
    (from) => (document.querySelector("video")?.currentTime ?? 0) > from + 1,
    checks.landed,
    { timeout: 20_000 },
  );
  checks.afterSeek = await videoTime(page);
  log(`recording ${checks.url}: ${checks.duration} s, seek to ${checks.seekTo} landed ${checks.landed}`);
  await shot(page, artifacts, `recording-${channel}`);
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "recording");
} finally {
  await browser.close();
}
finish(checks, errors);
