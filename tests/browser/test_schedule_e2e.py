"""Scheduling and analytics in Chromium against a real `kitch serve` (web/e2e/schedule.mjs): a
streamer schedules and edits streams in the dashboard in a time zone other than the browser's,
a visitor in a third zone sees them on the channel page and reads the iCalendar feed, then a
real RTMP publish (PyAV) near one scheduled time is watched by the visitor, and the dashboard's
analytics show that broadcast, linked to its scheduled stream, with its viewers chart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import (
    ARTIFACTS,
    kitch_server,
    node_script,
    parse_result,
    publishing,
    read_until,
    say,
    stream_key,
)
from tests.schedule.ical_check import check_feed, start_of
from tests.support.media import Fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STREAMER = "e2e_planner"
PASSWORD = "correct horse battery staple"


def test_schedule_in_the_dashboard_shows_on_the_channel_page_and_analytics_follow(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path
) -> None:
    extra = {"STREAMER": STREAMER, "PASSWORD": PASSWORD}
    lines: list[str] = []
    with (
        kitch_server(tmp_path / "data", "--ladder", "off", "--viewer-tick", "1") as kitch,
        node_script("schedule.mjs", kitch.base, **extra) as node,
    ):
        if read_until(node, lines, "READY"):
            url = kitch.rtmp_url(stream_key(kitch.base, STREAMER, PASSWORD))
            with publishing(url, av_fixture, loops=100):
                say(node, "GO")
                watched = read_until(node, lines, "WATCHED")
            if watched:
                say(node, "ENDED")
        out, err = node.communicate(timeout=240)
    result = parse_result("".join(lines) + out)
    c = result["checks"]
    print("schedule e2e checks:", {k: v for k, v in c.items() if k != "ics"})
    assert node.returncode == 0, f"{result['errors']}\n{err[-3000:]}"
    signed_out = "Failed to load resource: the server responded with a status of 401"
    assert [e for e in result["errors"] if signed_out not in e] == [], result["errors"]

    # the editor defaults to the browser's zone; an edit shows the stream's own zone and time
    assert c["defaultZone"] == "America/New_York", c["defaultZone"]
    assert c["editZone"] == "Asia/Tokyo" and c["editWhen"] == f"{c['tomorrowInTokyo']}T20:00"
    assert any("Tokyo premiere, take 2; live" in item for item in c["dashboardList"])
    # the visitor sees both, soonest first, the Tokyo one also in Tokyo time
    assert c["channelTitles"] == ["Starting soon", "Tokyo premiere, take 2; live"], c
    assert "20:00 in Asia/Tokyo" in c["channelItems"][1], c["channelItems"]
    assert "in America/New_York" in c["channelItems"][0], c["channelItems"]
    # the feed behind the link parses strictly and has both, the Tokyo one at 20:00 Tokyo
    assert c["icsStatus"] == 200 and c["icsType"].startswith("text/calendar")
    cal, zones = check_feed(c["ics"].encode())
    events = {e.text("SUMMARY"): e for e in cal.children if e.name == "VEVENT"}
    assert set(events) == {"Starting soon", "Tokyo premiere, take 2; live"}
    tokyo = events["Tokyo premiere, take 2; live"]
    day = c["tomorrowInTokyo"].replace("-", "")
    assert tokyo.one("DTSTART").params == {"TZID": "Asia/Tokyo"}
    assert tokyo.one("DTSTART").value == f"{day}T200000"
    assert tokyo.one("DURATION").value == "PT1H30M" and tokyo.one("SEQUENCE").value == "1"
    assert start_of(tokyo, zones).hour == 11  # 20:00 at +09:00

    # the broadcast, linked to the stream scheduled ten minutes ahead, with its viewers
    assert "scheduled as “Starting soon”" in c["analyticsRow"], c["analyticsRow"]
    assert int(c["peak"]) >= 1, c["peak"]
    assert "peak" in c["chartLabel"] and "average" in c["chartLabel"], c["chartLabel"]
    assert c["tableRows"] >= 2
    for name in ("schedule-dashboard", "schedule-channel-page", "schedule-analytics"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
