"""The scheduling rules: starts (offsets, wall-clock times in a zone, DST gaps and repeats),
bounds, zone names and when notifications fall due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kitch.schedule import rules
from kitch.schedule.rules import ScheduleError

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


@pytest.mark.parametrize(
    ("text", "zone", "want"),
    [
        ("2026-03-01T20:00:00+01:00", NEW_YORK, utc(2026, 3, 1, 19)),  # the offset decides
        ("2026-03-01T19:00:00Z", PARIS, utc(2026, 3, 1, 19)),
        ("2026-03-01T20:00:00.987+01:00", PARIS, utc(2026, 3, 1, 19)),  # fraction dropped
        ("2026-03-01T20:00", PARIS, utc(2026, 3, 1, 19)),  # winter: +01:00
        ("2026-07-01T20:00", PARIS, utc(2026, 7, 1, 18)),  # summer: +02:00
        ("2026-07-01T20:00:30", NEW_YORK, utc(2026, 7, 2, 0, 0, 30)),
        ("2026-07-01T20:00", KOLKATA, utc(2026, 7, 1, 14, 30)),
        # the hour repeated when clocks go back: its first occurrence (still +02:00)
        ("2026-10-25T02:30", PARIS, utc(2026, 10, 25, 0, 30)),
        ("2026-11-01T01:30", NEW_YORK, utc(2026, 11, 1, 5, 30)),
    ],
)
def test_starts(text: str, zone: ZoneInfo, want: datetime) -> None:
    got = rules.parse_start(text, zone)
    assert got == want and got.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("2026-03-29T02:30", PARIS),
        ("2026-03-08T02:00", NEW_YORK),
        ("2026-03-08T02:59:59", NEW_YORK),
    ],
)
def test_wall_clock_times_the_zone_skips_are_refused(text: str, zone: ZoneInfo) -> None:
    with pytest.raises(ScheduleError) as caught:
        rules.parse_start(text, zone)
    assert caught.value.code == "nonexistent_time"
    # an offset makes the same text an instant, which exists
    rules.parse_start(text + "+01:00", zone)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "2026-03-01",  # no time
        "20:00",
        "2026-13-01T20:00",
        "2026-02-30T20:00",
        "2026-03-01T25:00",
        "2026-03-01T20:00+25:00",
        "2026-03-01T20:00:00+01:00" + " " * 30,
        12345,
        None,
        ["2026-03-01T20:00"],
    ],
)
def test_bad_starts(text: object) -> None:
    with pytest.raises(ScheduleError) as caught:
        rules.parse_start(text, PARIS)
    assert caught.value.code == "invalid_start" and caught.value.message


def test_start_bounds() -> None:
    now = utc(2026, 3, 1, 12)
    rules.check_start(now + timedelta(seconds=1), now)
    rules.check_start(now + rules.MAX_AHEAD, now)
    for past in (now, now - timedelta(seconds=1), now - timedelta(days=3)):
        with pytest.raises(ScheduleError) as caught:
            rules.check_start(past, now)
        assert caught.value.code == "start_in_past"
    with pytest.raises(ScheduleError) as caught:
        rules.check_start(now + rules.MAX_AHEAD + timedelta(seconds=1), now)
    assert caught.value.code == "start_too_far_ahead" and "90 days" in caught.value.message


def test_duration_bounds() -> None:
    assert rules.check_duration(5) == 5 and rules.check_duration(1440) == 1440
    for bad in (4, 1441, 0, -60, True, 60.0, "60", None):
        with pytest.raises(ScheduleError) as caught:
            rules.check_duration(bad)
        assert caught.value.code == "invalid_duration"


def test_zone_names() -> None:
    for good in ("Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC"):
        assert rules.check_zone_name(good) == good
    for bad in ("../etc/passwd", "/etc/localtime", "Europe//Paris", "Europe/Paris/", "", "a" * 65,
                "Europe/Pa ris", "Europe\\Paris", 5, None, "A/B/C/D"):  # fmt: skip
        with pytest.raises(ScheduleError) as caught:
            rules.check_zone_name(bad)
        assert caught.value.code == "unknown_time_zone"


def test_wall_text() -> None:
    moment = utc(2026, 3, 1, 19, 0, 0).replace(microsecond=5).astimezone(PARIS)
    assert rules.wall_text(moment) == "2026-03-01T20:00:00+01:00"


START = 10_000.0
LEAD = 600.0


@pytest.mark.parametrize(
    ("now", "reminded", "noticed", "want"),
    [
        (START - LEAD - 1, False, False, rules.Due()),
        (START - LEAD, False, False, rules.Due(remind=True)),
        (START - 1, False, False, rules.Due(remind=True)),  # created inside the lead
        (START - 1, True, False, rules.Due()),
        (START, True, False, rules.Due(start=True)),
        # down over the whole lead: no reminder after the start, just the start notice
        (START, False, False, rules.Due(skip_reminder=True, start=True)),
        (START + 599, False, False, rules.Due(skip_reminder=True, start=True)),
        (START + 600, True, False, rules.Due(start=True)),
        (START + 601, True, False, rules.Due(skip_start=True)),  # too late to say "now"
        (START + 5000, True, True, rules.Due()),
    ],
)
def test_due(now: float, reminded: bool, noticed: bool, want: rules.Due) -> None:
    assert rules.due(START, now, LEAD, reminded=reminded, start_noticed=noticed) == want


def test_due_without_reminders() -> None:
    assert rules.due(START, START - 5, 0, reminded=False, start_noticed=False) == rules.Due(
        skip_reminder=True
    )
    assert rules.next_due(START, 0, reminded=False) == START
    assert rules.next_due(START, LEAD, reminded=False) == START - LEAD
    assert rules.next_due(START, LEAD, reminded=True) == START
