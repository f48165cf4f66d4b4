// The end-to-end scenario against a full Kitch server:
// register in the UI -> dashboard -> reveal the key (printed as "KEY <key>") -> wait for "GO" on
// stdin (the caller starts publishing) -> dashboard shows live -> channel page plays with
// behind-live shown -> phone viewport -> screenshots.
// Env: BASE_URL, USERNAME, PASSWORD, ARTIFACTS.
import { behindLive, env, finish, launch, log, newPage, overflowsX, register, reportFailure, shot, stdinLines, waitForPlayback } from "./lib.mjs";

const base = env("BASE_URL");
const username = env("USERNAME");
const password = env("PASSWORD");
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};

const stdin = stdinLines(); // buffered from the start: the caller may answer early
const waitForLine = stdin.waitForLine;

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await newPage(context, errors);

  await register(page, base, username, password, 20_000);
  checks.registered = true;
  checks.signedInAs = await page.getByTestId("signed-in-as").textContent();

  checks.keyHiddenAtFirst = (await page.getByTestId("stream-key").count()) === 0;
  checks.serverUrl = await page.getByTestId("server-url").inputValue();
  await shot(page, artifacts, "dashboard-offline");
  await page.getByRole("button", { name: "Show key" }).click();
  const key = await page.getByTestId("stream-key").inputValue();
  if (!key) throw new Error("empty stream key");
  process.stdout.write(`KEY ${key}\n`);
  await page.getByRole("button", { name: "Hide" }).click(); // keep it out of screenshots

  await waitForLine("GO");
  log("publisher started");

  await page.waitForSelector('[data-testid="dashboard-status"][data-live="true"]', { timeout: 40_000 });
  checks.dashboardLive = true;
  // ingest stats arrive a few seconds after going live (the server writes them periodically)
  await page.waitForFunction(
    () =>
      /\d+×\d+.*Keyframe interval\d/.test(document.querySelector('[data-testid="ingest-stats"]')?.textContent ?? ""),
    undefined,
    { timeout: 30_000, polling: 500 },
  ).catch(() => undefined);
  checks.ingestStats = await page.getByTestId("ingest-stats").textContent();
  checks.keyframeWarning = (await page.getByTestId("keyframe-warning").count()) > 0;
  await shot(page, artifacts, "dashboard-live");

  const watch = await newPage(context, errors);
  await watch.goto(`${base}/${username}`);
  checks.currentTime = await waitForPlayback(watch, 2, 40_000);
  await watch.waitForFunction(
    () => document.querySelector('[data-testid="behind-live"]')?.getAttribute("data-seconds"),
    undefined,
    { timeout: 15_000 },
  );
  // let the player settle on its live edge, then sample for a few seconds
  const samples = [];
  for (let i = 0; i < 8; i += 1) {
    await watch.waitForTimeout(500);
    samples.push(await behindLive(watch));
  }
  checks.behindLiveSamples = samples;
  checks.behindLive = samples.at(-1);
  checks.behindLiveText = await watch.textContent('[data-testid="behind-live"]');
  await shot(watch, artifacts, "channel");

  await page.goto(`${base}/`);
  await page.getByTestId("live-channels").waitFor({ timeout: 15_000 });
  checks.browseListsLive = ((await page.getByTestId("live-channels").textContent()) ?? "").includes(username);
  await shot(page, artifacts, "browse-live");

  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const phonePage = await newPage(phone, errors);
  await phonePage.goto(`${base}/${username}`);
  checks.phoneCurrentTime = await waitForPlayback(phonePage, 1, 40_000);
  checks.phoneOverflow = await overflowsX(phonePage);
  await shot(phonePage, artifacts, "channel-phone");

  // End broadcast: the dashboard now offers only Enable ingest, the server drops the publisher
  // and the watch page says the stream is over (the player's own state, or the offline card)
  await page.goto(`${base}/dashboard`);
  await page.getByRole("button", { name: "End broadcast" }).click();
  await page.getByRole("button", { name: "Enable ingest" }).waitFor({ timeout: 10_000 });
  checks.endOffersOnlyEnable = (await page.getByRole("button", { name: "End broadcast" }).count()) === 0;
  await page.waitForSelector('[data-testid="dashboard-status"][data-live="false"]', { timeout: 30_000 });
  checks.dashboardOfflineAfterEnd = true;
  await watch.waitForSelector('[data-testid="player-offline"], [data-testid="channel-offline"]', {
    timeout: 30_000,
  });
  checks.watchAfterEnd = await watch.evaluate(() =>
    document.querySelector('[data-testid="player-offline"]') ? "player-offline" : "channel-offline",
  );
  checks.watchErrorShown = (await watch.getByTestId("player-error").count()) > 0;
  await shot(watch, artifacts, "channel-ended");
  await shot(page, artifacts, "dashboard-ended");
  log("live scenario ok");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "live");
} finally {
  await browser.close();
  stdin.close();
}
finish(checks, errors);
