// Scheduling and analytics in the browser against a real `kitch serve`. A streamer (browser in
// New York time) signs up, schedules a stream from the dashboard for tomorrow 20:00 in Tokyo
// time, edits its title, and schedules another for ten minutes from now in their own zone. A
// signed-out visitor (browser in Paris time) sees both on the channel page, with the Tokyo one's
// local time, and reads the iCalendar feed it links to. Then the script prints READY and waits
// for GO (the caller publishes over RTMP), watches the stream for a few seconds, prints WATCHED
// and waits for ENDED (the caller stops), and checks the dashboard's analytics: the broadcast,
// linked to the stream scheduled ten minutes ahead, and its viewers chart.
// Env: BASE_URL, STREAMER, PASSWORD, ARTIFACTS.
import { env, finish, launch, log, newPage, register, reportFailure, shot, stdinLines } from "./lib.mjs";

const base = env("BASE_URL");
const streamerName = env("STREAMER");
const password = env("PASSWORD");
const artifacts = env("ARTIFACTS", "test-artifacts");
const errors = [];
const checks = {};

const stdin = stdinLines();

/** Fill the dashboard's schedule form and submit it; waits for the confirmation. */
async function scheduleStream(page, { title, when, zone, minutes }) {
  const form = page.getByTestId("schedule-form");
  await form.getByLabel("Stream title").fill(title);
  await form.getByLabel("Starts").fill(when);
  if (zone) await form.getByLabel("Time zone").selectOption(zone);
  if (minutes) await form.getByLabel("Expected length").selectOption(String(minutes));
  await form.getByRole("button", { name: "Schedule" }).click();
  await page.getByRole("status").filter({ hasText: `Scheduled “${title}”` }).waitFor({ timeout: 15_000 });
}

const browser = await launch();
try {
  const streamerCtx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, timezoneId: "America/New_York" });
  const visitorCtx = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "Europe/Paris" });
  const streamer = await newPage(streamerCtx, errors);
  const visitor = await newPage(visitorCtx, errors);

  await register(streamer, base, streamerName, password, 40_000);
  const form = streamer.getByTestId("schedule-form");
  await form.waitFor({ timeout: 30_000 });
  checks.defaultZone = await form.getByLabel("Time zone").inputValue();
  checks.defaultTitle = await form.getByLabel("Stream title").inputValue();

  // tomorrow 20:00 in Tokyo, 90 minutes
  const tomorrow = await streamer.evaluate(() => {
    const d = new Date(Date.now() + 86_400_000);
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Tokyo" }).format(d); // YYYY-MM-DD
  });
  checks.tomorrowInTokyo = tomorrow;
  await scheduleStream(streamer, { title: "Tokyo premiere", when: `${tomorrow}T20:00`, zone: "Asia/Tokyo", minutes: 90 });
  // edit its title (a comma and a semicolon: the feed must escape them)
  const first = streamer.getByTestId("my-scheduled-stream").filter({ hasText: "Tokyo premiere" });
  await first.getByRole("button", { name: "Edit “Tokyo premiere”" }).click();
  await streamer.getByRole("heading", { name: "Edit the scheduled stream" }).waitFor();
  checks.editZone = await form.getByLabel("Time zone").inputValue();
  checks.editWhen = await form.getByLabel("Starts").inputValue();
  await form.getByLabel("Stream title").fill("Tokyo premiere, take 2; live");
  await form.getByRole("button", { name: "Save changes" }).click();
  await streamer
    .getByTestId("my-scheduled-stream")
    .filter({ hasText: "Tokyo premiere, take 2; live" })
    .waitFor({ timeout: 15_000 });

  // ten minutes from now in the browser's own zone (the default)
  const soon = await streamer.evaluate(() => {
    const d = new Date(Date.now() + 10 * 60_000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  });
  await scheduleStream(streamer, { title: "Starting soon", when: soon });
  checks.dashboardList = await streamer.getByTestId("my-scheduled-stream").allTextContents();
  await shot(streamer, artifacts, "schedule-dashboard");

  // a signed-out visitor in Paris sees both on the channel page
  await visitor.goto(`${base}/${streamerName}`);
  const section = visitor.getByTestId("channel-schedule");
  await section.waitFor({ timeout: 30_000 });
  checks.channelTitles = await section.getByTestId("scheduled-title").allTextContents();
  checks.channelItems = await section.getByTestId("scheduled-stream").allTextContents();
  const href = await section.getByTestId("ics-link").getAttribute("href");
  checks.icsHref = href;
  const feed = await visitor.request.get(`${base}${href}`);
  checks.icsStatus = feed.status();
  checks.icsType = feed.headers()["content-type"];
  checks.ics = await feed.text();
  await shot(visitor, artifacts, "schedule-channel-page");
  log("scheduled; waiting for the publisher");

  process.stdout.write("READY\n");
  await stdin.waitForLine("GO", 90_000);
  await visitor.getByTestId("live-badge").first().waitFor({ timeout: 60_000 });
  await visitor.waitForSelector("video", { timeout: 30_000 });
  await visitor.waitForTimeout(8000); // a viewer for a few ticks
  process.stdout.write("WATCHED\n");
  await stdin.waitForLine("ENDED", 90_000);

  await streamer.reload();
  const row = streamer.getByTestId("analytics-row").first();
  await row.waitFor({ timeout: 30_000 });
  checks.analyticsRow = await row.textContent();
  checks.peak = await row.getByTestId("peak-viewers").textContent();
  const chart = streamer.getByTestId("viewers-chart");
  await chart.waitFor({ timeout: 30_000 });
  checks.chartLabel = await chart.getByRole("img").getAttribute("aria-label");
  checks.chartSummary = await streamer.getByTestId("viewers-summary").textContent();
  await streamer.getByText("Viewer counts as a table").click();
  checks.tableRows = await chart.locator("tbody tr").count();
  await streamer.getByRole("heading", { name: "Analytics" }).scrollIntoViewIfNeeded();
  await shot(streamer, artifacts, "schedule-analytics");
  log("schedule scenario ok");
} catch (e) {
  await reportFailure(errors, e, browser, artifacts, "schedule");
} finally {
  await browser.close();
  stdin.close();
}
finish(checks, errors);
