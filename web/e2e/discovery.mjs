// Discovery in the browser against a real server where one channel is live: the home page's live
// card (viewer count, category link, tags), type-ahead in the header search driven from the
// keyboard (an ARIA combobox: arrows, Enter), the results page, the category directory and a
// category page listing its live channel, and the same pages 360 px wide.
// Env: BASE_URL, LIVE (the live channel), OFFLINE (an offline one), ARTIFACTS.
import { env, finish, launch, log, newPage, overflowsX, reportFailure, shot } from "./lib.mjs";

const base = env("BASE_URL");
const liveName = env("LIVE");
const offlineName = env("OFFLINE");
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};

/** The combobox's state: expanded, the highlighted option's text, every option's text. */
async function comboState(page) {
  return page.evaluate(() => {
    const box = document.querySelector('[role="combobox"]');
    const active = box?.getAttribute("aria-activedescendant");
    const list = document.getElementById(box?.getAttribute("aria-controls") ?? "");
    return {
      expanded: box?.getAttribute("aria-expanded"),
      active: active ? (document.getElementById(active)?.textContent ?? null) : null,
      options: [...(list?.querySelectorAll('[role="option"]') ?? [])].map((o) => o.textContent ?? ""),
      focused: document.activeElement === box,
    };
  });
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await newPage(context, errors);

  // home: the live channel as a card, with its thumbnail (once the server has made the first
  // one from the stream), viewers, category and tags
  for (let i = 0; i < 40; i++) {
    const answer = await fetch(`${base}/api/v1/channels/${liveName}`).then((r) => r.json());
    if (answer.thumbnail_url) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.goto(`${base}/`);
  const card = page.getByTestId("live-channels").locator(`[data-channel="${liveName}"]`);
  await card.waitFor({ timeout: 20_000 });
  checks.homeViewerText = await card.getByTestId("viewer-count").textContent();
  const picture = card.getByTestId("thumbnail").locator("img");
  await picture.evaluate((img) => (img.complete ? null : new Promise((r) => img.addEventListener("load", r, { once: true }))));
  checks.homeThumbnail = await picture.evaluate((img) => ({
    src: new URL(img.currentSrc).pathname,
    aspect: img.naturalHeight ? img.naturalWidth / img.naturalHeight : 0,
  }));
  checks.homeCategoryHref = await card.getByRole("link", { name: "Speedrunning" }).getAttribute("href");
  checks.homeTags = await card.getByRole("list", { name: "Tags" }).textContent();
  checks.homeOffline = ((await page.getByTestId("offline-channels").textContent()) ?? "").includes(offlineName);
  await shot(page, artifacts, "discovery-home");

  // type-ahead from the keyboard: the first letters, suggestions, arrows, Enter
  const box = page.getByRole("combobox", { name: "Search channels and categories" });
  await box.focus();
  await page.keyboard.type("spee", { delay: 60 });
  const asked = Date.now();
  await page.getByRole("listbox", { name: "Suggestions" }).getByRole("option", { name: /Speedrunning/ }).waitFor({ timeout: 10_000 });
  await page.getByRole("option").filter({ hasText: liveName }).first().waitFor({ timeout: 10_000 });
  checks.suggestMs = Date.now() - asked;
  checks.afterTyping = await comboState(page);
  await shot(page, artifacts, "discovery-typeahead");
  await page.keyboard.press("ArrowDown");
  checks.firstDown = await comboState(page);
  // down to the live channel's option
  for (let i = 0; i < 8; i += 1) {
    const state = await comboState(page);
    if (state.active?.includes(liveName) || state.active?.toLowerCase().includes(liveName)) break;
    await page.keyboard.press("ArrowDown");
  }
  checks.onChannel = await comboState(page);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/${liveName}`, { timeout: 10_000 });
  checks.enterWentTo = new URL(page.url()).pathname;
  checks.afterEnter = await comboState(page);

  // Enter with nothing highlighted: the results page
  await box.focus();
  await page.keyboard.type("speedrun practice");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/search\?q=/, { timeout: 10_000 });
  checks.resultsUrl = new URL(page.url()).pathname + new URL(page.url()).search;
  await page.getByTestId("search-results").waitFor({ timeout: 10_000 });
  checks.resultCards = await page
    .getByTestId("search-results")
    .getByTestId("channel-card")
    .evaluateAll((cards) => cards.map((c) => c.getAttribute("data-channel")));
  // Escape closes the list, a second Escape clears the box
  await box.focus();
  await page.keyboard.type("zz");
  await page.keyboard.press("Escape");
  checks.escapeOnce = await comboState(page);
  await page.keyboard.press("Escape");
  checks.escapeTwiceValue = await box.inputValue();

  // the directory and a category page with its live channel
  await page.goto(`${base}/directory`);
  const tile = page.locator('[data-testid="category-tile"][data-slug="speedrunning"]');
  await tile.waitFor({ timeout: 10_000 });
  checks.directoryTiles = await page.getByTestId("category-tile").count();
  checks.firstTile = await page.getByTestId("category-tile").first().getAttribute("data-slug");
  checks.tileArt = await tile.locator("img").evaluate((img) => img.complete && img.naturalWidth > 0);
  await shot(page, artifacts, "discovery-directory");
  await tile.getByRole("link").click();
  await page.waitForURL(`${base}/directory/speedrunning`);
  await page.getByRole("heading", { name: "Speedrunning", level: 1 }).waitFor();
  await page.getByTestId("category-channels").waitFor({ timeout: 10_000 });
  checks.categoryCards = await page
    .getByTestId("category-channels")
    .getByTestId("channel-card")
    .evaluateAll((cards) => cards.map((c) => c.getAttribute("data-channel")));
  checks.categoryStats = await page.getByTestId("category-stats").textContent();
  // the API's count now (the browser itself became a viewer when it opened the channel page)
  checks.apiViewers = (await (await page.request.get(`${base}/api/v1/channels/${liveName}`)).json()).viewers;
  await shot(page, artifacts, "discovery-category");
  await page.goto(`${base}/directory/art`);
  await page.getByText("Nobody is streaming Art right now.").waitFor({ timeout: 10_000 });
  checks.emptyCategory = true;

  // a tag opens the channels that carry it
  await page.goto(`${base}/search?tag=glitchless`);
  await page.getByTestId("tag-results").waitFor({ timeout: 10_000 });
  checks.tagCards = await page.getByTestId("tag-results").getByTestId("channel-card").count();

  // a phone: nothing wider than the screen
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const small = await newPage(phone, errors);
  await small.goto(`${base}/`);
  await small.getByTestId("live-channels").waitFor({ timeout: 15_000 });
  checks.phoneHomeOverflow = await overflowsX(small);
  await small.goto(`${base}/directory/speedrunning`);
  await small.getByTestId("category-channels").waitFor({ timeout: 10_000 });
  checks.phoneCategoryOverflow = await overflowsX(small);
  await shot(small, artifacts, "discovery-category-phone");
  log("discovery checks done");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "discovery");
} finally {
  await browser.close();
}
finish(checks, errors);
