// Pages that need no stream: browse, sign in, sign up, the dashboard's sign-in redirect, keyboard
// focus, a phone viewport. With CHANNEL set, also plays that channel and reads behind-live.
// Env: BASE_URL (required), ARTIFACTS (screenshot dir), CHANNEL (optional).
import { behindLive, env, finish, launch, log, newPage, overflowsX, reportFailure, shot, waitForPlayback } from "./lib.mjs";

const base = env("BASE_URL");
const artifacts = env("ARTIFACTS", "test-artifacts");
const channel = env("CHANNEL", "");
const errors = [];
const checks = {};
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context, errors);

  await page.goto(`${base}/`);
  await page.getByRole("link", { name: "Kitch home" }).waitFor();
  await page.getByRole("heading", { name: "Live channels" }).waitFor();
  checks.browse = true;
  await shot(page, artifacts, "browse");

  // keyboard: the first Tab lands on the skip link, and focus is visible
  await page.keyboard.press("Tab");
  checks.firstTab = await page.evaluate(() => document.activeElement?.textContent ?? "");

  await page.goto(`${base}/login`);
  await page.getByLabel("Username or email").waitFor();
  await page.getByLabel("Password").waitFor();
  checks.login = true;
  await shot(page, artifacts, "login");

  await page.goto(`${base}/register`);
  await page.getByLabel("Repeat password").waitFor();
  checks.register = true;
  await shot(page, artifacts, "register");

  await page.goto(`${base}/dashboard`);
  await page.waitForURL(/\/login\?next=%2Fdashboard$/);
  checks.dashboardRedirect = new URL(page.url()).pathname + new URL(page.url()).search;

  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const phonePage = await newPage(phone, errors);
  await phonePage.goto(`${base}/register`);
  await phonePage.getByLabel("Repeat password").waitFor();
  checks.phoneOverflow = await overflowsX(phonePage);
  await shot(phonePage, artifacts, "register-phone");

  if (channel) {
    await page.goto(`${base}/${channel}`);
    const t = await waitForPlayback(page, 2, 45_000);
    checks.currentTime = t;
    await page.waitForFunction(
      () => document.querySelector('[data-testid="behind-live"]')?.getAttribute("data-seconds"),
      undefined,
      { timeout: 15_000 },
    );
    checks.behindLive = await behindLive(page);
    checks.behindLiveText = await page.textContent('[data-testid="behind-live"]');
    checks.muted = await page.evaluate(() => document.querySelector("video")?.muted);
    await shot(page, artifacts, "channel");
    await phonePage.goto(`${base}/${channel}`);
    checks.phoneCurrentTime = await waitForPlayback(phonePage, 1, 45_000);
    checks.phoneChannelOverflow = await overflowsX(phonePage);
    await shot(phonePage, artifacts, "channel-phone");
  }
  log("smoke ok");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "smoke");
} finally {
  await browser.close();
}
finish(checks, errors);
