// Watch a live channel and switch its quality through the player's menu, by name.
// Env: BASE_URL, CHANNEL, QUALITIES (comma-separated names, as pickQuality matches them:
// "720p", "source", "auto"; default: every entry of the menu, then "auto"), SECONDS watched per
// quality (default 4), ARTIFACTS. Prints RESULT {checks: {options, initial, picks: [...]}, errors}
// where each pick has its label, switchMs, progress (currentTime gained while watched),
// maxFreezeMs (longest time currentTime stood still while watched), and before/after states:
// waiting events counted, the hls.js level in use (index, label) and the decoded video height.
import {
  countStalls,
  env,
  finish,
  launch,
  log,
  newPage,
  playbackState,
  qualityOptions,
  reportFailure,
  shot,
  switchAndWatch,
  waitForPlayback,
} from "./lib.mjs";

const base = env("BASE_URL");
const channel = env("CHANNEL");
const seconds = Number(env("SECONDS", "4"));
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context, errors);
  await page.goto(`${base}/${channel}`);
  await waitForPlayback(page, 1, 40_000);
  await countStalls(page);
  checks.options = await qualityOptions(page);
  checks.initial = await playbackState(page);
  const wanted = env("QUALITIES", "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  const names = wanted.length
    ? wanted
    : [...checks.options.slice(1).map((label) => label.replace(/ \(.*\)$/, "")), "auto"];
  checks.picks = [];
  for (const name of names) {
    const pick = await switchAndWatch(page, name, seconds);
    log(
      `quality ${pick.label}: +${pick.progress.toFixed(2)} s, longest freeze ${pick.maxFreezeMs} ms, ` +
        `level ${pick.after.levelLabel}, ${pick.after.videoHeight}p`,
    );
    checks.picks.push(pick);
  }
  await shot(page, artifacts, `quality-${channel}`);
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "quality");
} finally {
  await browser.close();
}
finish(checks, errors);
