// Account flow against the real JSON API: sign up, dashboard (key hidden, reveal, rotate, stream
// info), channel page offline, settings (display name, avatar), silent token refresh, session kept
// across reloads from the HttpOnly refresh cookie (which page scripts cannot read), sign out in
// one tab signing out another, sign in, password change, account deletion.
// Env: BASE_URL, USERNAME, PASSWORD, ARTIFACTS, TOKEN_TTL_S (the server's access token lifetime).
import { env, finish, launch, log, newPage, overflowsX, register, reportFailure, shot } from "./lib.mjs";

const base = env("BASE_URL");
const username = env("USERNAME");
const password = env("PASSWORD");
const artifacts = env("ARTIFACTS", "test-artifacts");
const ttl = Number(env("TOKEN_TTL_S", "0"));
const errors = [];
const checks = {};
// 1x1 transparent PNG
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

/** What page scripts can see of the session: cookies and web storage. */
const visibleToScripts = (page) =>
  page.evaluate(() => ({
    cookie: document.cookie,
    localStorage: Object.keys(localStorage).length,
    sessionStorage: Object.keys(sessionStorage).length,
  }));
/** The browser's refresh cookie (null when there is none). */
const refreshCookie = async (context) =>
  (await context.cookies(`${base}/api/v1/auth/refresh`)).find((c) => c.name === "kitch_refresh") ?? null;
const isRefresh = (r) => r.url().endsWith("/api/v1/auth/refresh") && r.request().method() === "POST";

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await newPage(context, errors);

  await register(page, base, username, password);
  checks.scriptsSee = await visibleToScripts(page);
  const cookie = await refreshCookie(context);
  checks.refreshCookie = cookie && {
    httpOnly: cookie.httpOnly,
    sameSite: cookie.sameSite,
    path: cookie.path,
    persistent: cookie.expires > Date.now() / 1000,
  };
  checks.offline = await page.getByTestId("dashboard-status").getAttribute("data-live");
  checks.keyHiddenAtFirst = (await page.getByTestId("stream-key").count()) === 0;
  checks.serverUrl = await page.getByTestId("server-url").inputValue();

  await page.getByRole("button", { name: "Show key" }).click();
  const key1 = await page.getByTestId("stream-key").inputValue();
  await page.getByRole("button", { name: "Rotate key…" }).click();
  await page.getByRole("button", { name: "Make a new key" }).click();
  await page.getByText("New key made").waitFor();
  const key2 = await page.getByTestId("stream-key").inputValue();
  checks.keyRotated = Boolean(key1) && Boolean(key2) && key1 !== key2;
  await page.getByRole("button", { name: "Hide" }).click();
  checks.keyHiddenAgain = (await page.getByTestId("stream-key").count()) === 0;

  await page.getByLabel("Title", { exact: true }).fill("E2E title");
  await page.getByLabel("Category", { exact: true }).selectOption({ label: "Science & Technology" });
  await page.getByLabel("Tags").fill("one, two");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText("Saved.").waitFor();
  await shot(page, artifacts, "dashboard");

  await page.goto(`${base}/${username}`);
  await page.getByTestId("channel-offline").waitFor();
  checks.channelTitle = await page.getByTestId("channel-title").textContent();
  checks.channelTags = await page.getByRole("list", { name: "Tags" }).textContent();
  await shot(page, artifacts, "channel-offline");

  await page.goto(`${base}/settings`);
  await page.getByLabel("Display name").fill("E2E Person");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText("Profile saved.").waitFor();
  checks.headerName = await page.getByTestId("signed-in-as").textContent();
  await page.getByLabel("Upload an image").setInputFiles({ name: "a.png", mimeType: "image/png", buffer: PNG });
  await page.getByText("Avatar updated.").waitFor();
  checks.avatarStatus = (await page.request.get(`${base}/api/v1/users/${username}/avatar`)).status();
  // a new email address needs the current password
  await page.getByRole("textbox", { name: "Email" }).fill(`${username}.new@example.com`);
  await page.getByLabel("Your password").fill(password);
  await page.getByRole("button", { name: "Change email" }).click();
  await page.getByText("Email changed.").waitFor();
  checks.emailChanged = true;
  await shot(page, artifacts, "settings");

  // the signed-in pages 360 px wide: nothing wider than the screen (same page, same session)
  await page.setViewportSize({ width: 360, height: 740 });
  checks.phoneOverflow = {};
  for (const [name, path, ready] of [
    ["dashboard-phone", "/dashboard", "dashboard-status"],
    ["settings-phone", "/settings", null],
    ["channel-offline-phone", `/${username}`, "channel-offline"],
  ]) {
    await page.goto(`${base}${path}`);
    if (ready) await page.getByTestId(ready).waitFor();
    else await page.getByLabel("Display name").waitFor();
    if (path === "/dashboard") await page.getByRole("button", { name: "Show key" }).click();
    checks.phoneOverflow[name] = await overflowsX(page);
    if (path === "/dashboard") await page.getByRole("button", { name: "Hide" }).click();
    await shot(page, artifacts, name);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  if (ttl > 0) {
    // the access token (in memory) is refreshed from the cookie by a timer before it expires
    await page.goto(`${base}/dashboard`);
    await page.getByTestId("dashboard-status").waitFor();
    const timed = await page.waitForResponse(isRefresh, { timeout: (ttl + 10) * 1000 });
    checks.silentRefresh = timed.status() === 200;
    await page.waitForTimeout(1000);
    checks.stillSignedIn = await page.getByTestId("signed-in-as").textContent();
    // a request made after the first token's expiry goes through with the refreshed one
    await page.getByRole("button", { name: "Show key" }).click();
    checks.keyAfterRefresh = Boolean(await page.getByTestId("stream-key").inputValue());
  }

  // a reload forgets the in-memory token: one refresh from the cookie signs the tab in again
  const restored = page.waitForResponse(isRefresh);
  await page.reload();
  checks.reloadRefresh = (await restored).status();
  checks.afterReload = await page.getByTestId("signed-in-as").textContent();
  checks.scriptsSeeAfterReload = await visibleToScripts(page);

  // a second tab of the same browser is signed in from the same cookie, and signed out with us
  const other = await newPage(context, errors);
  await other.goto(`${base}/`);
  checks.otherTab = await other.getByTestId("signed-in-as").textContent();

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("link", { name: "Sign in" }).waitFor();
  await other.getByRole("link", { name: "Sign in" }).waitFor({ timeout: 5000 });
  checks.otherTabSignedOut = (await other.getByTestId("signed-in-as").count()) === 0;
  await other.close();
  checks.cookieAfterSignOut = await refreshCookie(context);
  await page.reload();
  await page.getByRole("link", { name: "Sign in" }).waitFor();
  checks.signedOutAfterReload = (await page.getByTestId("signed-in-as").count()) === 0;

  await page.goto(`${base}/login?next=%2Fsettings`);
  await page.getByLabel("Username or email").fill(`${username}.new@example.com`);
  await page.getByLabel("Password").fill("wrong password!");
  await page.getByRole("button", { name: "Sign in" }).click();
  checks.wrongPassword = await page.getByRole("alert").textContent();
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/settings`);
  checks.signedInAgain = await page.getByTestId("signed-in-as").textContent();

  const newPassword = `${password}-2`;
  await page.getByLabel("Current password").fill(password);
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByLabel("Repeat new password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await page.getByText("Password changed.").waitFor();
  await page.reload();
  checks.signedInAfterPasswordChange = await page.getByTestId("signed-in-as").textContent();

  await page.getByRole("button", { name: "Delete account…" }).click();
  await page.getByLabel("Confirm with your password").fill(newPassword);
  await page.getByRole("button", { name: "Delete my account" }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole("link", { name: "Sign in" }).waitFor();
  checks.deletedChannelStatus = (await page.request.get(`${base}/api/v1/channels/${username}`)).status();
  log("account flow ok");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "account");
} finally {
  await browser.close();
}
finish(checks, errors);
