// Chat, moderation, follow and the go-live notification with two people in two browser contexts:
// the streamer and a viewer sign up in the UI and open the streamer's channel page; they chat both
// ways; a message carrying HTML shows as text; the streamer times the viewer out from the
// message's moderation menu and the viewer sees it and cannot send; the streamer finds the viewer
// in the room settings' banned list, unbans them there, and the viewer posts again (the
// moderation log shows both actions); the viewer follows the channel, prints "READY" and waits
// for "GO" on stdin (the caller starts a real RTMP publish), then the viewer's bell shows one
// unread go-live notification without a reload.
// Env: BASE_URL, STREAMER, VIEWER, PASSWORD, ARTIFACTS.
import { env, finish, launch, log, newPage, register, reportFailure, shot, stdinLines } from "./lib.mjs";

const base = env("BASE_URL");
const streamerName = env("STREAMER");
const viewerName = env("VIEWER");
const password = env("PASSWORD");
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};
const dialogs = [];

const stdin = stdinLines(); // buffered from the start: the caller may answer early
const waitForLine = stdin.waitForLine;

/** The texts of the chat log's messages as the page shows them ("name: text"). */
const messageTexts = (page) => page.getByTestId("chat-message").allTextContents();

/** Wait until the chat log shows a message whose text is exactly `text`; returns the ms waited. */
async function seeMessage(page, text, timeout = 20_000) {
  const start = Date.now();
  await page
    .getByRole("log", { name: "Chat messages" })
    .locator(".chat-text")
    .filter({ hasText: text })
    .first()
    .waitFor({ timeout });
  return Date.now() - start;
}

/** Type `text` in the composer and press Send. */
async function say(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

async function openChannel(page) {
  await page.goto(`${base}/${streamerName}`);
  await page.getByRole("complementary", { name: "Chat" }).waitFor({ timeout: 30_000 });
  // the socket is open (no "Connecting…") and the composer is there
  await page.getByLabel("Message", { exact: true }).waitFor({ timeout: 30_000 });
  await page.waitForFunction(
    () => !/Connecting|Reconnecting/.test(document.querySelector(".chat-head")?.textContent ?? ""),
    undefined,
    { timeout: 30_000, polling: 200 },
  );
}

const browser = await launch();
try {
  const streamerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const viewerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const streamer = await newPage(streamerCtx, errors);
  const viewer = await newPage(viewerCtx, errors);
  for (const p of [streamer, viewer]) {
    p.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }

  await register(streamer, base, streamerName, password, 40_000);
  await register(viewer, base, viewerName, password, 40_000);
  checks.registered = true;

  await openChannel(streamer);
  await openChannel(viewer);
  checks.viewerSeesFollow = (await viewer.getByRole("button", { name: "Follow", exact: true }).count()) === 1;
  checks.streamerSeesNoFollow = (await streamer.getByRole("button", { name: "Follow", exact: true }).count()) === 0;
  log("both on the channel page");

  // viewer -> streamer, then streamer -> viewer
  const fromViewer = `hello from ${viewerName}`;
  await say(viewer, fromViewer);
  checks.viewerToStreamerMs = await seeMessage(streamer, fromViewer);
  checks.viewerSeesOwn = (await seeMessage(viewer, fromViewer)) >= 0;
  const fromStreamer = `welcome ${viewerName}`;
  await say(streamer, fromStreamer);
  checks.streamerToViewerMs = await seeMessage(viewer, fromStreamer);
  checks.viewerLog = await messageTexts(viewer);

  // HTML in a message is text on both ends: no <img> element, no alert
  const html = "<img src=x onerror=alert(1)>";
  await say(viewer, html);
  checks.htmlMs = await seeMessage(streamer, html);
  await seeMessage(viewer, html);
  await streamer.waitForTimeout(1000); // time for a broken image's onerror to fire
  const htmlTexts = await streamer.locator(".chat-text").allTextContents();
  checks.htmlShownAsText = htmlTexts.includes(html);
  checks.imgInStreamerLog = await streamer.getByTestId("chat-log").locator("img").count();
  checks.imgInViewerLog = await viewer.getByTestId("chat-log").locator("img").count();
  await shot(streamer, artifacts, "community-chat-streamer");

  // the streamer times the viewer out from the viewer's first message's menu
  const menuButton = streamer.getByRole("button", { name: `Moderate ${viewerName}'s message` }).first();
  checks.moderateButtons = await streamer.getByRole("button", { name: `Moderate ${viewerName}'s message` }).count();
  checks.viewerModerateButtons = await viewer.getByRole("button", { name: /^Moderate / }).count();
  await menuButton.click();
  const menu = streamer.getByRole("group", { name: `Moderate ${viewerName}` });
  await menu.waitFor({ timeout: 10_000 });
  checks.menuButtons = await menu.getByRole("button").allTextContents();
  await menu.getByRole("button", { name: "Timeout 1 min" }).click();
  const timedOutAt = Date.now();
  await viewer.getByTestId("chat-notice").filter({ hasText: "You were timed out" }).waitFor({ timeout: 20_000 });
  checks.timeoutNoticeMs = Date.now() - timedOutAt;
  checks.viewerNotice = await viewer.getByTestId("chat-notice").textContent();
  await streamer.getByTestId("chat-notice").filter({ hasText: "timed out" }).waitFor({ timeout: 20_000 }).catch(() => undefined);
  checks.streamerNotice = (await streamer.getByTestId("chat-notice").allTextContents()).join(" ");

  // the viewer cannot send: the button waits, Enter sends nothing, the streamer sees nothing new
  const blocked = `am I still here ${viewerName}`;
  await viewer.getByLabel("Message", { exact: true }).fill(blocked);
  const send = viewer.locator(".chat-composer button[type=submit]");
  checks.sendButtonText = await send.textContent();
  checks.sendDisabled = await send.isDisabled();
  checks.placeholder = await viewer.getByLabel("Message", { exact: true }).getAttribute("placeholder");
  checks.waitStatus = await viewer.getByTestId("chat-wait").textContent().catch(() => null);
  await viewer.getByLabel("Message", { exact: true }).press("Enter");
  await streamer.waitForTimeout(3000);
  checks.blockedReachedStreamer = (await streamer.locator(".chat-text").allTextContents()).includes(blocked);
  checks.blockedInViewerLog = (await viewer.locator(".chat-text").allTextContents()).includes(blocked);
  await shot(viewer, artifacts, "community-timed-out");

  // the streamer opens the room settings' banned list: the viewer is there, timed out; Unban
  await streamer.locator("summary", { hasText: "Room settings" }).click();
  await streamer.locator("summary", { hasText: "Banned users" }).click();
  const bannedList = streamer.getByRole("list", { name: "Banned users" });
  const bannedRow = bannedList.getByTestId("banned-user").filter({ hasText: viewerName });
  await bannedRow.waitFor({ timeout: 15_000 });
  checks.bannedRow = await bannedRow.textContent();
  await bannedRow.scrollIntoViewIfNeeded();
  await shot(streamer, artifacts, "community-banned-list");
  await bannedRow.getByRole("button", { name: `Unban ${viewerName}` }).click();
  const unbannedAt = Date.now();
  await bannedRow.waitFor({ state: "detached", timeout: 15_000 });
  checks.bannedRowGoneMs = Date.now() - unbannedAt;
  checks.bannedAfterUnban = await streamer.getByTestId("banned-user").count();
  // the viewer's composer is back (the text typed while timed out is still in it)
  await viewer.getByRole("button", { name: "Send", exact: true }).waitFor({ timeout: 15_000 });
  checks.viewerCanSendMs = Date.now() - unbannedAt;
  checks.viewerSendEnabled = await viewer.getByRole("button", { name: "Send", exact: true }).isEnabled();
  const again = `back again ${viewerName}`;
  await say(viewer, again);
  checks.afterUnbanMs = await seeMessage(streamer, again);
  // the viewer's own page shows it too (the same broadcast; it may render a moment later)
  await seeMessage(viewer, again, 10_000).catch(() => undefined);
  checks.afterUnbanInViewerLog = (await viewer.locator(".chat-text").allTextContents()).includes(again);
  // the moderation log has both actions
  await streamer.locator("summary", { hasText: "Moderation log" }).click();
  const modLog = streamer.getByRole("list", { name: "Moderation log" });
  await modLog.getByTestId("audit-entry").filter({ hasText: `unbanned ${viewerName}` }).waitFor({ timeout: 15_000 });
  checks.moderationLog = await modLog.getByTestId("audit-entry").allTextContents();
  await streamer.locator("summary", { hasText: "Room settings" }).click(); // closed again

  // follow, then the caller goes live
  checks.bellBefore = await viewer.locator(".notifications-button").getAttribute("aria-label");
  await viewer.getByRole("button", { name: "Follow", exact: true }).click();
  await viewer.getByRole("button", { name: "Following", exact: true }).waitFor({ timeout: 15_000 });
  checks.followPressed = await viewer.getByRole("button", { name: "Following", exact: true }).getAttribute("aria-pressed");
  checks.followerCount = await viewer.getByTestId("follower-count").textContent().catch(() => null);
  process.stdout.write("READY\n");
  await waitForLine("GO", 90_000);
  const wentLive = Date.now();
  let reloads = 0; // full page loads from now on (a reload would be one)
  viewer.on("load", () => {
    reloads += 1;
  });
  log("publisher started");

  const bell = viewer.getByRole("button", { name: /^Notifications, \d+ unread$/ });
  await bell.waitFor({ timeout: 60_000 });
  checks.notificationMs = Date.now() - wentLive;
  checks.bellLabel = await bell.getAttribute("aria-label");
  checks.unreadBadge = await viewer.getByTestId("unread-count").textContent();
  // a while later it is still exactly one (no duplicate from a second event)
  await viewer.waitForTimeout(4000);
  checks.bellLabelLater = await viewer.locator(".notifications-button").getAttribute("aria-label");
  await viewer.locator(".notifications-button").click();
  const region = viewer.getByRole("region", { name: "Notifications" });
  await region.waitFor({ timeout: 10_000 });
  checks.notifications = await region.getByTestId("notification").allTextContents();
  checks.viewerPageUrl = viewer.url();
  checks.viewerReloads = reloads;
  await shot(viewer, artifacts, "community-notification");
  log("community scenario ok");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "community");
} finally {
  await browser.close();
  stdin.close();
}
checks.dialogs = dialogs;
finish(checks, errors);
