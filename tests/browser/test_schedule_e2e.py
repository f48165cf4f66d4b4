"""Scheduling and analytics in Chromium against a real `kitch serve` (web/e2e/schedule.mjs): a
streamer schedules and edits streams in the dashboard in a time zone other than the browser's,
a visitor in a third zone sees them on the channel page and reads the iCalendar feed, then a
real RTMP publish (PyAV) near one scheduled time is watched by the visitor, and the dashboard's
analytics show that broadcast, linked to its scheduled stream, with its viewers chart.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.browser.harness import (
    ARTIFACTS,
    WEB,
    free_port,
    kitch_serve,
    node_env,
    parse_result,
    publishing,
    server,
)
from tests.schedule.ical_check import check_feed, start_of
from tests.support.media import Fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STREAMER = "e2e_planner"
PASSWORD = "correct horse battery staple"


def _stream_key(base: str) -> str:
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": STREAMER, "password": PASSWORD, "token_delivery": "body"},
    )
    assert login.status_code == 200, login.text
    answer = httpx.get(
        f"{base}/api/v1/me/stream-key",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
    )
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["stream_key"]
    return key


def _until(node: subprocess.Popen[str], lines: list[str], want: str) -> bool:
    """Read the script's output until the line ``want`` (True) or its result / end (False)."""
    assert node.stdout is not None
    while True:
        line = node.stdout.readline()
        if not line:
            return False
        lines.append(line)
        if line.startswith(want):
            return True
        if line.startswith("RESULT "):
            return False


def _say(node: subprocess.Popen[str], word: str) -> None:
    assert node.stdin is not None
    node.stdin.write(word + "\n")
    node.stdin.flush()


def test_schedule_in_the_dashboard_shows_on_the_channel_page_and_analytics_follow(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path
) -> None:
    http_port, rtmp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    args = kitch_serve(
        tmp_path / "data", http_port, rtmp_port, "--ladder", "off", "--viewer-tick", "1"
    )
    extra = {"STREAMER": STREAMER, "PASSWORD": PASSWORD}
    lines: list[str] = []
    with (
        server(args, base + "/api/v1/channels", {"KITCH_BCRYPT_COST": "4"}),
        subprocess.Popen(
            ["node", "e2e/schedule.mjs"],
            cwd=WEB,
            env=node_env(base, **extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as node,
    ):
        try:
            if _until(node, lines, "READY"):
                url = f"rtmp://127.0.0.1:{rtmp_port}/live/{_stream_key(base)}"
                with publishing(url, av_fixture, loops=100):
                    _say(node, "GO")
                    watched = _until(node, lines, "WATCHED")
                if watched:
                    _say(node, "ENDED")
            out, err = node.communicate(timeout=240)
        finally:
            if node.poll() is None:
                node.kill()
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
