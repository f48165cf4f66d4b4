import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { ApiProvider } from "../src/api/context";
import type { BroadcastStats, ScheduledStream } from "../src/api/types";
import { notificationText } from "../src/chat/NotificationsMenu";
import { UpcomingStreams } from "../src/components/UpcomingStreams";
import { ViewersChart } from "../src/components/ViewersChart";
import { niceTop, summarise, tableRows, thin, viewerPath } from "../src/lib/analytics";
import {
  browserZone,
  durationChoices,
  formatMinutes,
  formatSeconds,
  inputValue,
  relativeStart,
  timeZones,
  wallClock,
} from "../src/lib/schedule";
import { newDraft } from "../src/pages/ScheduleEditor";
import { channel, serve, type Call } from "./helpers";
import { MemoryRouter } from "react-router";
import { renderAt } from "./render";

afterEach(() => {
  cleanup();
});

const inTwoDays = new Date(Date.now() + 2 * 86_400_000);

function stream(id: number, extra: Partial<ScheduledStream> = {}): ScheduledStream {
  const starts = new Date(inTwoDays.getTime() + id * 3_600_000);
  return {
    id,
    channel: { name: "alice", display_name: "Alice", avatar_url: null, live: false },
    title: `Stream ${id}`,
    category: "Games",
    starts_at: starts.toISOString(),
    ends_at: new Date(starts.getTime() + 3_600_000).toISOString(),
    starts_at_local: starts.toISOString().slice(0, 19) + "+00:00",
    timezone: "UTC",
    duration_minutes: 60,
    status: "scheduled",
    broadcast_id: null,
    created_at: "2026-01-01T00:00:00.000Z",
    updated_at: "2026-01-01T00:00:00.000Z",
    ...extra,
  };
}

describe("schedule times", () => {
  it("reads and writes the wall clock of a zone", () => {
    expect(inputValue("2026-03-01T20:00:00+01:00")).toBe("2026-03-01T20:00");
    expect(inputValue("nonsense")).toBe("");
    const at = Date.UTC(2026, 2, 1, 19, 0); // 20:00 in Paris (winter), 14:00 in New York
    expect(wallClock(at, "Europe/Paris")).toBe("2026-03-01T20:00");
    expect(wallClock(at, "America/New_York")).toBe("2026-03-01T14:00");
    expect(wallClock(Date.UTC(2026, 6, 1, 18, 0), "Europe/Paris")).toBe("2026-07-01T20:00");
  });

  it("words durations and distances", () => {
    expect([45, 60, 90, 1440].map(formatMinutes)).toEqual(["45 min", "1 h", "1 h 30 min", "24 h"]);
    expect([5, 65, 3725].map(formatSeconds)).toEqual(["5 s", "1 min 05 s", "1 h 02 min"]);
    const now = Date.UTC(2026, 2, 1, 12);
    const at = (min: number) => new Date(now + min * 60_000).toISOString();
    expect([at(-5), at(0), at(12), at(150), at(60 * 72)].map((t) => relativeStart(t, now))).toEqual([
      "started",
      "starting now",
      "in 12 min",
      "in 3 h",
      "in 3 days",
    ]);
    expect(durationChoices(75)).toContain(75);
    expect(durationChoices()).toEqual([...durationChoices()].sort((a, b) => a - b));
  });

  it("lists the zones with the browser's and the stream's in it", () => {
    const zones = timeZones("Europe/Paris", "Etc/GMT+5");
    expect(zones).toContain("UTC");
    expect(zones).toContain("Europe/Paris");
    expect(zones).toContain("Etc/GMT+5");
    expect(zones).toContain(browserZone());
    expect(zones).toEqual([...zones].sort());
  });

  it("starts a new draft at the next full hour, at least 30 minutes ahead, in the zone", () => {
    const now = Date.UTC(2026, 2, 1, 18, 40);
    const draft = newDraft(channel("alice", { title: "Usual title", category: "Art" }), "Europe/Paris", now);
    expect(draft).toEqual({ title: "Usual title", category: "Art", when: "2026-03-01T21:00", zone: "Europe/Paris", minutes: 60 });
    expect(newDraft(null, "UTC", Date.UTC(2026, 2, 1, 18, 10)).when).toBe("2026-03-01T19:00");
  });
});

describe("viewers chart arithmetic", () => {
  const samples = [
    { t: 100, viewers: 1 },
    { t: 105, viewers: 3 },
    { t: 110, viewers: 6 },
    { t: 115, viewers: 2 },
  ];

  it("rounds the top up to 1, 2 or 5 times a power of ten", () => {
    expect([0, 1, 2, 3, 6, 10, 11, 48, 120].map(niceTop)).toEqual([1, 1, 2, 5, 10, 10, 20, 50, 200]);
  });

  it("draws time left to right and viewers bottom to top", () => {
    expect(viewerPath(samples, { width: 30, height: 12 }, 6)).toBe("M0 10 L10 6 L20 0 L30 8");
    expect(viewerPath([{ t: 5, viewers: 3 }], { width: 30, height: 12 }, 6)).toBe("M0 6 L30 6");
    expect(viewerPath([], { width: 30, height: 12 }, 6)).toBe("");
  });

  it("thins to the columns without losing a peak", () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ t: i, viewers: i === 777 ? 50 : 1 }));
    const thinned = thin(many, 100);
    expect(thinned.length).toBeLessThanOrEqual(100);
    expect(Math.max(...thinned.map((s) => s.viewers))).toBe(50);
    expect(thin(samples, 10)).toEqual(samples);
  });

  it("sums up and tabulates", () => {
    expect(summarise(samples)).toEqual({ peak: 6, peakAt: 110, average: 3, samples: 4 });
    expect(summarise([])).toEqual({ peak: 0, peakAt: null, average: null, samples: 0 });
    expect(tableRows(samples, 2)).toEqual([
      { from: 100, to: 105, most: 3, least: 1 },
      { from: 110, to: 115, most: 6, least: 2 },
    ]);
    expect(tableRows(samples).length).toBe(4);
  });

  it("renders an SVG image whose name is the summary, and a table", () => {
    render(<ViewersChart samples={samples} />);
    const chart = screen.getByRole("img");
    expect(chart.getAttribute("aria-label")).toMatch(/peak 6 at .*, average 3\.0, 4 samples/);
    expect(chart.querySelector("path.chart-line")?.getAttribute("d")).toMatch(/^M0 /);
    const rows = within(screen.getByRole("table")).getAllByRole("row");
    expect(rows).toHaveLength(5); // the head and one per sample
    expect(rows[3]!.textContent).toContain("6");
  });

  it("says when there is nothing to draw", () => {
    render(<ViewersChart samples={[]} />);
    expect(screen.getByTestId("viewers-chart-empty").textContent).toMatch(/No viewer counts/);
    expect(screen.queryByRole("img")).toBeNull();
  });
});

describe("notifications", () => {
  it("say what happened by kind", () => {
    const base = { channel: "alice", title: "Speedrun" };
    expect(notificationText({ ...base, kind: "live" })).toBe("alice is live: Speedrun");
    expect(notificationText({ ...base, kind: "schedule_reminder" })).toBe("alice starts soon: Speedrun");
    expect(notificationText({ ...base, kind: "schedule_start", title: "" })).toBe(
      "alice's scheduled stream starts now",
    );
  });
});

describe("the channel page", () => {
  it("shows the upcoming streams, in the streamer's zone too, with the calendar link", async () => {
    const server = serve({
      "GET /channels/alice": channel("alice"),
      "GET /channels/alice/schedule": {
        schedule: [stream(1, { timezone: "Asia/Tokyo", title: "Tokyo night" }), stream(2)],
        ics_url: "/channels/alice/schedule.ics",
      },
      "GET /channels/alice/chat": { messages: [] },
    });
    renderAt("/alice", server);
    const section = await screen.findByTestId("channel-schedule");
    const items = within(section).getAllByTestId("scheduled-stream");
    expect(items.map((i) => within(i).getByTestId("scheduled-title").textContent)).toEqual([
      "Tokyo night",
      "Stream 2",
    ]);
    expect(items[0]!.textContent).toContain("in Asia/Tokyo");
    expect(items[1]!.textContent).not.toContain(" in UTC");
    expect(items[0]!.querySelector("time")?.getAttribute("datetime")).toBe(stream(1).starts_at);
    expect(within(section).getByTestId("ics-link").getAttribute("href")).toBe("/channels/alice/schedule.ics");
  });

  it("shows nothing when nothing is scheduled", async () => {
    const server = serve({
      "GET /channels/alice": channel("alice"),
      "GET /channels/alice/schedule": { schedule: [], ics_url: "/channels/alice/schedule.ics" },
    });
    renderAt("/alice", server);
    await screen.findByTestId("channel-title");
    await waitFor(() => expect(server.sent()).toContain("GET /channels/alice/schedule"));
    expect(screen.queryByTestId("channel-schedule")).toBeNull();
  });
});

describe("the upcoming streams section", () => {
  it("lists every channel's next streams and links to them", async () => {
    const live = stream(3, {
      channel: { name: "bob", display_name: "Bob", avatar_url: null, live: true },
      broadcast_id: 9,
    });
    const server = serve({ "GET /schedule/upcoming?limit=2": { schedule: [stream(1), live], next_cursor: "x" } });
    render(
      <ApiProvider client={server.client}>
        <MemoryRouter>
          <UpcomingStreams limit={2} />
        </MemoryRouter>
      </ApiProvider>,
    );
    const items = await screen.findAllByTestId("upcoming-stream");
    expect(items).toHaveLength(2);
    expect(within(items[1]!).getByRole("link").getAttribute("href")).toBe("/bob");
    expect(items[1]!.textContent).toContain("live now");
    expect(screen.getByRole("heading", { name: "Upcoming streams" })).toBeTruthy();
  });

  it("takes no room when nothing is scheduled or the request fails", async () => {
    const server = serve({});
    const { container } = render(
      <ApiProvider client={server.client}>
        <MemoryRouter>
          <UpcomingStreams />
        </MemoryRouter>
      </ApiProvider>,
    );
    await waitFor(() => expect(server.sent()).toContain("GET /schedule/upcoming?limit=8"));
    expect(container.innerHTML).toBe("");
  });
});

function dashboardServer(extra: Record<string, unknown> = {}) {
  let listed: ScheduledStream[] = [];
  const posted: Call[] = [];
  const server = serve(
    {
      "GET /channels/alice": channel("alice", { title: "My usual title", category: "Art" }),
      "GET /channels/alice/schedule": () => ({
        status: 200,
        body: { schedule: listed, ics_url: "/channels/alice/schedule.ics" },
      }),
      "POST /channels/alice/schedule": (call: Call) => {
        posted.push(call);
        const made = stream(5, { title: (call.body as { title: string }).title, timezone: "Europe/Paris" });
        listed = [made];
        return { status: 201, body: made };
      },
      "PATCH /channels/alice/schedule/5": (call: Call) => {
        posted.push(call);
        listed = [{ ...listed[0]!, title: (call.body as { title: string }).title }];
        return { status: 200, body: listed[0] };
      },
      "DELETE /channels/alice/schedule/5": () => {
        const gone = { ...listed[0]!, status: "cancelled" };
        listed = [];
        return { status: 200, body: gone };
      },
      "GET /me/analytics?limit=20": { broadcasts: [] },
      ...extra,
    },
    true,
  );
  return { server, posted };
}

describe("the dashboard's schedule", () => {
  it("schedules, edits and cancels a stream", async () => {
    const { server, posted } = dashboardServer();
    renderAt("/dashboard", server);
    const form = await screen.findByTestId("schedule-form");
    const title = within(form).getByLabelText("Stream title") as HTMLInputElement;
    expect(title.value).toBe("My usual title");
    expect((within(form).getByLabelText("Time zone") as HTMLSelectElement).value).toBe(browserZone());
    fireEvent.change(title, { target: { value: "Retro night" } });
    fireEvent.change(within(form).getByLabelText("Starts"), { target: { value: "2099-03-01T20:00" } });
    fireEvent.change(within(form).getByLabelText("Time zone"), { target: { value: "Europe/Paris" } });
    fireEvent.change(within(form).getByLabelText("Expected length"), { target: { value: "90" } });
    fireEvent.click(within(form).getByRole("button", { name: "Schedule" }));
    expect(await screen.findByText(/Scheduled “Retro night”/, {}, { timeout: 3000 })).toBeTruthy();
    expect(posted[0]!.body).toEqual({
      title: "Retro night",
      category: "Art",
      starts_at: "2099-03-01T20:00",
      timezone: "Europe/Paris",
      duration_minutes: 90,
    });
    expect(posted[0]!.headers.Authorization).toBe("Bearer access-1");
    const item = await screen.findByTestId("my-scheduled-stream");
    expect(item.textContent).toContain("Retro night");

    fireEvent.click(within(item).getByRole("button", { name: "Edit “Retro night”" }));
    expect(await screen.findByRole("heading", { name: "Edit the scheduled stream" })).toBeTruthy();
    expect((within(form).getByLabelText("Time zone") as HTMLSelectElement).value).toBe("Europe/Paris");
    fireEvent.change(within(form).getByLabelText("Stream title"), { target: { value: "Retro night 2" } });
    fireEvent.click(within(form).getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(screen.getByTestId("my-scheduled-stream").textContent).toContain("Retro night 2"));
    expect(posted[1]!.method).toBe("PATCH");

    fireEvent.click(screen.getByRole("button", { name: "Cancel “Retro night 2”" }));
    fireEvent.click(await screen.findByRole("button", { name: "Yes, cancel it" }));
    expect(await screen.findByText("No streams scheduled.")).toBeTruthy();
    expect(server.sent()).toContain("DELETE /channels/alice/schedule/5");
  });

  it("shows the server's reason when it refuses", async () => {
    const { server } = dashboardServer({
      "POST /channels/alice/schedule": () => ({
        status: 422,
        body: { error: { code: "start_in_past", message: "the start time has passed: pick a time ahead" } },
      }),
    });
    renderAt("/dashboard", server);
    const form = await screen.findByTestId("schedule-form");
    fireEvent.change(within(form).getByLabelText("Starts"), { target: { value: "2000-01-01T00:00" } });
    fireEvent.click(within(form).getByRole("button", { name: "Schedule" }));
    // the schedule form's own alert (other dashboard cards may show theirs)
    await waitFor(() =>
      expect(screen.getAllByRole("alert").map((a) => a.textContent)).toContain("the start time has passed: pick a time ahead"),
    );
    expect(screen.queryByTestId("my-scheduled-stream")).toBeNull();
  });
});

describe("the dashboard's analytics", () => {
  const row = (id: number, extra: Partial<BroadcastStats> = {}): BroadcastStats => ({
    id,
    title: `Broadcast ${id}`,
    started_at: "2026-03-01T19:00:00.000Z",
    ended_at: "2026-03-01T20:30:00.000Z",
    live: false,
    duration_seconds: 5400,
    peak_viewers: 12,
    average_viewers: 7.25,
    viewer_samples: 3,
    chat_messages: 40,
    new_followers: 3,
    schedule: { id: 2, title: "Planned" },
    ...extra,
  });

  it("lists broadcasts and draws the picked one's viewers", async () => {
    const { server } = dashboardServer({
      "GET /me/analytics?limit=20": { broadcasts: [row(8), row(7, { title: "Older", schedule: null })] },
      "GET /me/analytics/8": {
        broadcast: row(8),
        viewers: [
          { t: 1772391600, viewers: 4 },
          { t: 1772391605, viewers: 12 },
        ],
        tick_seconds: 5,
      },
      "GET /me/analytics/7": { broadcast: row(7), viewers: [], tick_seconds: 5 },
    });
    renderAt("/dashboard", server);
    const table = await screen.findByTestId("analytics-table");
    const rows = within(table).getAllByTestId("analytics-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]!.textContent).toContain("1 h 30 min");
    expect(rows[0]!.textContent).toContain("scheduled as “Planned”");
    expect(within(rows[0]!).getByTestId("peak-viewers").textContent).toBe("12");
    expect(rows[0]!.textContent).toContain("7.3");
    const chart = await screen.findByTestId("viewers-chart");
    expect(within(chart).getByRole("img").getAttribute("aria-label")).toMatch(/peak 12/);
    fireEvent.click(within(rows[1]!).getByRole("button"));
    expect(await screen.findByTestId("viewers-chart-empty")).toBeTruthy();
    expect(server.sent()).toContain("GET /me/analytics/7");
  });

  it("says when there are no broadcasts yet", async () => {
    const { server } = dashboardServer();
    renderAt("/dashboard", server);
    expect((await screen.findByTestId("analytics-empty")).textContent).toMatch(/No broadcasts yet/);
  });
});
