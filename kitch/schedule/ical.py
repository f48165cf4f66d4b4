"""A small iCalendar (RFC 5545) writer for a channel's schedule feed.

One ``VCALENDAR`` with a ``VTIMEZONE`` per time zone its events use and one ``VEVENT`` per
scheduled stream. Lines end in CRLF and are folded at 75 octets (never inside a UTF-8
character); TEXT values escape backslash, semicolon, comma and line breaks and drop other
control characters. A start is written in its own zone (``DTSTART;TZID=Europe/Paris:...``),
in UTC for the zone ``UTC``, and in UTC as well when the local time would be ambiguous (the
repeated hour when clocks go back: RFC 5545 reads such a local time as its first occurrence).

The ``VTIMEZONE`` carries no recurrence rules: it lists the zone's actual offsets over the span
of the feed's events (found by probing the zone, so it is right for whatever rules the tz
database holds, past changes included), each transition as one observance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

CRLF = "\r\n"
#: Longest line in octets, CRLF not counted (RFC 5545 section 3.1).
MAX_OCTETS = 75
PRODID = "-//Kitch//Schedule 1.0//EN"
#: How finely the zone is probed for offset changes before bisecting to the second.
_PROBE = timedelta(hours=6)


def escape_text(value: str) -> str:
    """``value`` as an RFC 5545 TEXT value: ``\\`` ``;`` ``,`` escaped, line breaks as ``\\n``,
    other control characters (but tab) dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char in ";,":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t" or not (ord(char) < 0x20 or ord(char) == 0x7F):
            out.append(char)
    return "".join(out)


def fold(line: str) -> str:
    """``line`` folded into lines of at most 75 octets joined by CRLF + space (the space counts
    towards the next line's 75); a UTF-8 character is never cut."""
    data = line.encode("utf-8")
    if len(data) <= MAX_OCTETS:
        return line
    parts: list[bytes] = []
    start, room = 0, MAX_OCTETS
    while len(data) - start > room:
        cut = start + room
        while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            cut -= 1
        parts.append(data[start:cut])
        start, room = cut, MAX_OCTETS - 1
    parts.append(data[start:])
    return (CRLF + " ").join(part.decode("utf-8") for part in parts)


def utc_text(moment: datetime) -> str:
    """``20260301T190000Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def local_text(moment: datetime) -> str:
    """``20260301T200000`` (the wall clock of an aware ``moment``, no zone)."""
    return moment.strftime("%Y%m%dT%H%M%S")


def offset_text(delta: timedelta | None) -> str:
    """``+0100``, ``-0330``, ``+053328`` (seconds only when there are some)."""
    seconds = int((delta or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def duration_text(minutes: int) -> str:
    """``PT1H30M``, ``PT2H``, ``PT45M`` (RFC 5545 dur-time)."""
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"PT{hours}H{mins}M"
    return f"PT{hours}H" if hours else f"PT{mins}M"


@dataclass(frozen=True)
class Event:
    """One scheduled stream. ``start`` is aware; ``zone`` names the zone to write it in (a key
    of the zones given to :func:`calendar`, or ``UTC``); ``stamp`` is when it was last changed
    (DTSTAMP of a feed without METHOD, RFC 5545 section 3.8.7.2)."""

    uid: str
    stamp: datetime
    start: datetime
    zone: str
    minutes: int
    summary: str
    description: str = ""
    categories: tuple[str, ...] = ()
    url: str | None = None
    cancelled: bool = False
    sequence: int = 0
    created: datetime | None = None


def _state(moment: datetime, zone: tzinfo) -> tuple[timedelta | None, timedelta | None, str]:
    local = moment.astimezone(zone)
    return local.utcoffset(), local.dst(), local.tzname() or ""


def transitions(
    zone: tzinfo, start: datetime, end: datetime
) -> list[tuple[datetime, tuple[timedelta | None, timedelta | None, str]]]:
    """``[(instant, (offset, dst, name)), ...]``: the zone's state at ``start``, then each
    change up to ``end`` at the exact second it happens (UTC instants)."""
    at = start.astimezone(UTC).replace(microsecond=0)
    state = _state(at, zone)
    found = [(at, state)]
    while at < end:
        step = min(at + _PROBE, end)
        then = _state(step, zone)
        if then != state:
            low, high = at, step  # state(low) == state, state(high) != state
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                if _state(middle, zone) == state:
                    low = middle
                else:
                    high = middle
            state = _state(high, zone)
            found.append((high, state))
            at = high
        else:
            at = step
    return found


def vtimezone(name: str, zone: tzinfo, start: datetime, end: datetime) -> list[str]:
    """The VTIMEZONE lines of ``zone`` (called ``name``) for events between ``start`` and
    ``end``: one observance for the state at ``start``, one per change after it."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{name}"]
    changes = transitions(zone, start, end)
    before = changes[0][1][0]
    for i, (instant, (offset, dst, abbreviation)) in enumerate(changes):
        kind = "DAYLIGHT" if dst else "STANDARD"
        previous = offset if i == 0 else before
        # an observance's DTSTART is the local time of the change by the offset before it
        local = instant.replace(tzinfo=None) + (previous or timedelta(0))
        lines += [
            f"BEGIN:{kind}",
            f"DTSTART:{local.strftime('%Y%m%dT%H%M%S')}",
            f"TZOFFSETFROM:{offset_text(previous)}",
            f"TZOFFSETTO:{offset_text(offset)}",
        ]
        if abbreviation:
            lines.append(f"TZNAME:{escape_text(abbreviation)}")
        lines.append(f"END:{kind}")
        before = offset
    lines.append("END:VTIMEZONE")
    return lines


def _dtstart(event: Event, zones: Mapping[str, tzinfo]) -> str:
    zone = zones.get(event.zone)
    if event.zone == "UTC" or zone is None:
        return f"DTSTART:{utc_text(event.start)}"
    local = event.start.astimezone(zone)
    first = local.replace(fold=0).astimezone(UTC)
    if first != event.start.astimezone(UTC):  # the second of a repeated local time
        return f"DTSTART:{utc_text(event.start)}"
    return f"DTSTART;TZID={event.zone}:{local_text(local)}"


def _event_lines(event: Event, zones: Mapping[str, tzinfo]) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{utc_text(event.stamp)}",
        f"SEQUENCE:{event.sequence}",
        _dtstart(event, zones),
        f"DURATION:{duration_text(event.minutes)}",
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    categories = [escape_text(c) for c in event.categories if c]
    if categories:
        lines.append(f"CATEGORIES:{','.join(categories)}")
    if event.url:
        lines.append(f"URL:{event.url}")
    lines.append(f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}")
    lines.append("TRANSP:TRANSPARENT")
    if event.created is not None:
        lines.append(f"CREATED:{utc_text(event.created)}")
    lines += [f"LAST-MODIFIED:{utc_text(event.stamp)}", "END:VEVENT"]
    return lines


def calendar(
    events: Iterable[Event],
    zones: Mapping[str, tzinfo],
    *,
    name: str,
    refresh: timedelta = timedelta(hours=1),
) -> bytes:
    """The whole feed as UTF-8 bytes: ``name`` is the calendar's display name; ``zones`` maps
    each event's ``zone`` to its loaded zone (``UTC`` needs none); ``refresh`` is the
    refresh interval suggested to subscribers."""
    items = list(events)
    refresh_text = duration_text(max(1, int(refresh.total_seconds() // 60)))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"NAME:{escape_text(name)}",
        f"X-WR-CALNAME:{escape_text(name)}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{refresh_text}",
        f"X-PUBLISHED-TTL:{refresh_text}",
    ]
    used = sorted({e.zone for e in items if e.zone != "UTC" and e.zone in zones})
    for zone_name in used:
        mine = [e for e in items if e.zone == zone_name]
        start = min(e.start for e in mine) - timedelta(days=1)
        end = max(e.start + timedelta(minutes=e.minutes) for e in mine) + timedelta(days=1)
        lines += vtimezone(zone_name, zones[zone_name], start, end)
    for event in items:
        lines += _event_lines(event, zones)
    lines.append("END:VCALENDAR")
    return (CRLF.join(fold(line) for line in lines) + CRLF).encode("utf-8")
