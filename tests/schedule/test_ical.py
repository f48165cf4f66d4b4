"""The iCalendar writer, read back by the strict reader of tests/schedule/ical_check.py: folding
and escaping round trips, VTIMEZONEs that give the right instants, and the reader's own
refusals (so a passing feed means something)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kitch.schedule import ical
from tests.schedule.ical_check import (
    IcalError,
    check_feed,
    duration_of,
    start_of,
    text_list,
    unescape_text,
    unfold,
)

ZONES = {
    name: ZoneInfo(name)
    for name in (
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "America/St_Johns",
        "Australia/Lord_Howe",  # daylight saving of 30 minutes
        "Pacific/Chatham",  # +12:45 / +13:45
    )
}


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type, misc]


def event(n: int, start: datetime, zone: str, **extra: object) -> ical.Event:
    fields: dict[str, object] = {
        "uid": f"schedule-{n}@tv.example",
        "stamp": at(2026, 1, 5, 8),
        "start": start,
        "zone": zone,
        "minutes": 90,
        "summary": f"stream {n}",
        **extra,
    }
    return ical.Event(**fields)  # type: ignore[arg-type]


def lines_of(data: bytes) -> list[bytes]:
    return data[:-2].split(b"\r\n")


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "a, b; c\\d",
        "line one\nline two\r\nthree\rfour",
        "tab\tkept, bell\x07 and nul\x00 dropped",
        'quotes " and colons : stay',
        "émoji 🎮🎮🎮 and 漢字",
        "\\n is not a newline",
        "",
    ],
)
def test_text_escaping_round_trips(text: str) -> None:
    escaped = ical.escape_text(text)
    want = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x07", "").replace("\x00", "")
    assert unescape_text(escaped) == want
    assert "\n" not in escaped and "\r" not in escaped


@given(st.text(max_size=400))
def test_any_text_escapes_folds_and_comes_back(text: str) -> None:
    line = "SUMMARY:" + ical.escape_text(text)
    folded = (ical.fold(line) + "\r\n").encode("utf-8")
    for physical in lines_of(folded):
        assert len(physical) <= 75
        physical.decode("utf-8")  # never cut inside a character
    (back,) = unfold(folded)
    assert back == line
    kept = "".join(
        c for c in text.replace("\r\n", "\n").replace("\r", "\n")
        if c in "\t\n" or not (ord(c) < 0x20 or ord(c) == 0x7F)
    )  # fmt: skip
    assert unescape_text(back.removeprefix("SUMMARY:")) == kept


def test_folding_at_75_octets_exactly() -> None:
    assert ical.fold("X" * 75) == "X" * 75
    folded = ical.fold("X" * 76)
    assert folded == "X" * 75 + "\r\n " + "X"
    many = ical.fold("Y" * 300).split("\r\n")
    assert [len(x) for x in many] == [75, 75, 75, 75, 4]  # 75, then space + 74 each
    # a 4-octet character at the edge moves to the next line whole
    line = "Z" * 73 + "🎮" + "z"
    first, second = ical.fold(line).encode().split(b"\r\n")
    assert first == b"Z" * 73 and second == " 🎮z".encode()


def test_durations_and_offsets() -> None:
    assert [ical.duration_text(m) for m in (5, 45, 60, 90, 1440)] == [
        "PT5M", "PT45M", "PT1H", "PT1H30M", "PT24H",
    ]  # fmt: skip
    assert ical.offset_text(timedelta(hours=5, minutes=30)) == "+0530"
    assert ical.offset_text(timedelta(hours=-3, minutes=-30)) == "-0330"
    assert ical.offset_text(timedelta(0)) == "+0000"
    assert ical.offset_text(timedelta(minutes=19, seconds=32)) == "+001932"


def test_transitions_are_found_to_the_second() -> None:
    paris = ZONES["Europe/Paris"]
    found = ical.transitions(paris, at(2026, 1, 1), at(2027, 1, 1))
    assert [t for t, _ in found] == [at(2026, 1, 1), at(2026, 3, 29, 1), at(2026, 10, 25, 1)]
    assert [s[2] for _, s in found] == ["CET", "CEST", "CET"]
    howe = ical.transitions(ZONES["Australia/Lord_Howe"], at(2026, 1, 1), at(2027, 1, 1))
    assert [s[0] for _, s in howe] == [
        timedelta(hours=11), timedelta(hours=10, minutes=30), timedelta(hours=11),
    ]  # fmt: skip


def test_a_feed_reads_back_to_the_same_instants() -> None:
    events = [
        event(1, at(2026, 3, 1, 19), "Europe/Paris"),  # winter
        event(2, at(2026, 7, 1, 18), "Europe/Paris"),  # summer
        event(3, at(2026, 3, 8, 7, 30), "America/New_York", minutes=45),  # DST day
        event(4, at(2026, 5, 1, 14, 30), "Asia/Kolkata", minutes=1440),
        event(5, at(2026, 4, 4, 15, 30), "America/St_Johns"),
        event(6, at(2026, 4, 4, 15, 30), "Australia/Lord_Howe"),
        event(7, at(2026, 9, 27, 13, 50), "Pacific/Chatham"),
        event(8, at(2026, 6, 1, 12), "UTC"),
        # the second 02:30 of 25 October in Paris (01:30 UTC): written in UTC
        event(9, at(2026, 10, 25, 1, 30), "Europe/Paris"),
        event(10, at(2026, 10, 25, 0, 30), "Europe/Paris"),  # the first one: local time
    ]
    data = ical.calendar(events, ZONES, name="Alice on Kitch")
    cal, zones = check_feed(data)
    assert sorted(zones) == sorted(ZONES)
    read = [c for c in cal.children if c.name == "VEVENT"]
    assert [start_of(e, zones) for e in read] == [e.start for e in events]
    assert [duration_of(e) for e in read] == [timedelta(minutes=e.minutes) for e in events]
    assert read[7].one("DTSTART").value == "20260601T120000Z"
    assert read[8].one("DTSTART").value == "20261025T013000Z"
    assert read[9].one("DTSTART").params == {"TZID": "Europe/Paris"}
    assert read[9].one("DTSTART").value == "20261025T023000"
    assert read[0].one("DTSTART").value == "20260301T200000"
    assert cal.text("X-WR-CALNAME") == "Alice on Kitch"
    assert data.count(b"\r\n") == data.count(b"\n")


def test_event_fields_round_trip() -> None:
    summary = "Speedrun, part 2; the \\final\\ one\nwith 🎮 " + "long " * 30
    events = [
        event(
            1,
            at(2026, 3, 1, 19),
            "Europe/Paris",
            summary=summary,
            description="Alice streams on Kitch: https://tv.example/alice",
            categories=("Games, retro",),
            url="https://tv.example/alice",
            sequence=3,
            created=at(2026, 1, 2, 3, 4, 5),
        ),
        event(2, at(2026, 3, 2, 19), "Europe/Paris", cancelled=True),
    ]
    cal, _ = check_feed(ical.calendar(events, ZONES, name="Alice; on, Kitch"))
    first, second = (c for c in cal.children if c.name == "VEVENT")
    assert first.text("SUMMARY") == summary
    assert text_list(first.one("CATEGORIES").value) == ["Games, retro"]
    assert first.text("UID") == "schedule-1@tv.example"
    assert first.one("DTSTAMP").value == "20260105T080000Z"
    assert first.one("CREATED").value == "20260102T030405Z"
    assert first.one("SEQUENCE").value == "3" and first.one("STATUS").value == "CONFIRMED"
    assert first.one("URL").value == "https://tv.example/alice"
    assert second.one("STATUS").value == "CANCELLED"
    assert second.maybe("CATEGORIES") is None and second.maybe("DTEND") is None
    assert cal.text("NAME") == "Alice; on, Kitch"


def test_an_empty_feed_is_valid() -> None:
    cal, zones = check_feed(ical.calendar([], ZONES, name="Nobody"))
    assert zones == {} and [c for c in cal.children] == []


GOOD = ical.calendar([event(1, at(2026, 3, 1, 19), "Europe/Paris")], ZONES, name="x")


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (GOOD.replace(b"\r\n", b"\n"), "CRLF"),
        (GOOD.replace(b"SUMMARY:stream 1", b"SUMMARY:" + b"s" * 80), "octets"),
        (GOOD.replace(b"SUMMARY:stream 1", b"SUMMARY:a, b"), "unescaped"),
        (GOOD.replace(b"SUMMARY:stream 1", b"SUMMARY:a\\qb"), "escape"),
        (GOOD.replace(b"BEGIN:VTIMEZONE", b"BEGIN:VTIMEZONE\r\nBEGIN:X"), "does not close"),
        (GOOD.replace(b"TZID:Europe/Paris\r\n", b"TZID:Europe/Rome\r\n"), "no VTIMEZONE"),
        (GOOD.replace(b"DURATION:PT1H30M", b"DURATION:PT1H30M\r\nDTEND:20260301T210000Z"), "DTEND"),
        (GOOD.replace(b"DURATION:PT1H30M", b"DURATION:1H30M"), "DURATION"),
        (GOOD.replace(b"DTSTAMP:20260105T080000Z", b"DTSTAMP:20260105T080000"), "UTC"),
        (GOOD.replace(b"UID:schedule-1@tv.example\r\n", b""), "exactly one UID"),
        (GOOD + b"BEGIN:VCALENDAR\r\n", "after"),
    ],
)
def test_the_reader_refuses_broken_feeds(broken: bytes, complaint: str) -> None:
    assert broken != GOOD
    with pytest.raises(IcalError, match=complaint):
        check_feed(broken)


def test_the_reader_takes_offsets_from_the_feed() -> None:
    """A wrong offset in the VTIMEZONE moves the instant read: the reader trusts the feed, not
    the tz database, so the instants checked above prove the VTIMEZONEs right."""
    wrong = GOOD.replace(b"TZOFFSETTO:+0100", b"TZOFFSETTO:+0300")
    assert wrong != GOOD
    cal, zones = check_feed(wrong)
    (vevent,) = [c for c in cal.children if c.name == "VEVENT"]
    assert start_of(vevent, zones) == at(2026, 3, 1, 17)
    cal, zones = check_feed(GOOD)
    (vevent,) = [c for c in cal.children if c.name == "VEVENT"]
    assert start_of(vevent, zones) == at(2026, 3, 1, 19)
