"""A strict reader of iCalendar (RFC 5545) for the tests: it refuses anything the RFC forbids
that a feed could get wrong (bare LF, lines over 75 octets, unescaped commas and semicolons in
TEXT, unbalanced components, missing required properties, a TZID without its VTIMEZONE, both
DTEND and DURATION...), and reads starts through the feed's own VTIMEZONE, not the tz database,
so a wrong VTIMEZONE gives a wrong instant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

NAME = re.compile(r"[A-Za-z0-9-]+")
UTC_TIME = re.compile(r"\d{8}T\d{6}Z")
LOCAL_TIME = re.compile(r"\d{8}T\d{6}")
OFFSET = re.compile(r"[+-]\d{4}(\d{2})?")
_DUR_TIME = r"T(?:\d+H(?:\d+M(?:\d+S)?)?|\d+M(?:\d+S)?|\d+S)"
DURATION = re.compile(rf"[+-]?P(?:\d+W|\d+D(?:{_DUR_TIME})?|{_DUR_TIME})")
STATUSES = {"TENTATIVE", "CONFIRMED", "CANCELLED"}
UNITS = {"W": "weeks", "D": "days", "H": "hours", "M": "minutes", "S": "seconds"}


class IcalError(AssertionError):
    pass


@dataclass
class Prop:
    name: str
    params: dict[str, str]
    value: str


@dataclass
class Component:
    name: str
    props: list[Prop] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def all(self, name: str) -> list[Prop]:
        return [p for p in self.props if p.name == name]

    def one(self, name: str) -> Prop:
        found = self.all(name)
        if len(found) != 1:
            raise IcalError(f"{self.name} must have exactly one {name}, has {len(found)}")
        return found[0]

    def maybe(self, name: str) -> Prop | None:
        found = self.all(name)
        if len(found) > 1:
            raise IcalError(f"{self.name} has {name} {len(found)} times")
        return found[0] if found else None

    def text(self, name: str) -> str:
        return unescape_text(self.one(name).value)


def unfold(data: bytes) -> list[str]:
    """The content lines: CRLF only, each physical line at most 75 octets, folds undone."""
    if not data.endswith(b"\r\n"):
        raise IcalError("the feed must end with CRLF")
    physical = data[:-2].split(b"\r\n")
    lines: list[str] = []
    for number, raw in enumerate(physical, 1):
        if b"\r" in raw or b"\n" in raw:
            raise IcalError(f"line {number}: a bare CR or LF")
        if len(raw) > 75:
            raise IcalError(f"line {number}: {len(raw)} octets (at most 75)")
        if not raw:
            raise IcalError(f"line {number}: empty")
        if raw[:1] in (b" ", b"\t"):
            if not lines:
                raise IcalError("the first line is a continuation")
            lines[-1] += raw[1:].decode("utf-8", errors="strict")  # raises on a cut character
        else:
            lines.append(raw.decode("utf-8", errors="strict"))
    return lines


def parse_line(line: str) -> Prop:
    match = NAME.match(line)
    if match is None:
        raise IcalError(f"no property name: {line!r}")
    name, rest = match.group(0).upper(), line[match.end() :]
    params: dict[str, str] = {}
    while rest.startswith(";"):
        pmatch = NAME.match(rest, 1)
        if pmatch is None or rest[pmatch.end() : pmatch.end() + 1] != "=":
            raise IcalError(f"bad parameter in {line!r}")
        pname = pmatch.group(0).upper()
        rest = rest[pmatch.end() + 1 :]
        if rest.startswith('"'):
            end = rest.find('"', 1)
            if end < 0:
                raise IcalError(f"unclosed quoted parameter in {line!r}")
            pvalue, rest = rest[1:end], rest[end + 1 :]
        else:
            pend = min((i for i in (rest.find(";"), rest.find(":")) if i >= 0), default=-1)
            if pend < 0:
                raise IcalError(f"no value in {line!r}")
            pvalue, rest = rest[:pend], rest[pend:]
            if any(c in pvalue for c in ',"'):
                raise IcalError(f"parameter value must be quoted in {line!r}")
        params[pname] = pvalue
    if not rest.startswith(":"):
        raise IcalError(f"no ':' after the name in {line!r}")
    value = rest[1:]
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise IcalError(f"a control character in {line!r}")
    return Prop(name, params, value)


def parse(data: bytes) -> Component:
    """The one top-level component (balanced BEGIN/END, nothing after it)."""
    stack: list[Component] = []
    top: Component | None = None
    for line in unfold(data):
        prop = parse_line(line)
        if prop.name == "BEGIN":
            if top is not None:
                raise IcalError("something after the top-level component")
            child = Component(prop.value.upper())
            if stack:
                stack[-1].children.append(child)
            stack.append(child)
        elif prop.name == "END":
            if not stack or stack[-1].name != prop.value.upper():
                raise IcalError(
                    f"END:{prop.value} does not close {stack[-1].name if stack else ''}"
                )
            done = stack.pop()
            if not stack:
                top = done
        else:
            if not stack:
                raise IcalError(f"{prop.name} outside any component")
            stack[-1].props.append(prop)
    if stack or top is None:
        raise IcalError("unbalanced components")
    return top


def _unescape(value: str, *, in_list: bool) -> list[str]:
    items: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value):
                raise IcalError(f"a lone backslash at the end of {value!r}")
            nxt = value[i + 1]
            if nxt in "nN":
                out.append("\n")
            elif nxt in "\\;,":
                out.append(nxt)
            else:
                raise IcalError(f"unknown escape \\{nxt} in {value!r}")
            i += 2
            continue
        if char == "," and in_list:
            items.append("".join(out))
            out = []
        elif char in ",;":
            raise IcalError(f"unescaped {char!r} in TEXT {value!r}")
        else:
            out.append(char)
        i += 1
    items.append("".join(out))
    return items


def unescape_text(value: str) -> str:
    """A single TEXT value (a bare comma or semicolon is an error)."""
    return _unescape(value, in_list=False)[0]


def text_list(value: str) -> list[str]:
    """A comma-separated list of TEXT (CATEGORIES)."""
    return _unescape(value, in_list=True)


def _utc(value: str) -> datetime:
    if not UTC_TIME.fullmatch(value):
        raise IcalError(f"{value!r} is not a UTC date-time")
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _offset(value: str) -> timedelta:
    if not OFFSET.fullmatch(value) or value == "-0000":
        raise IcalError(f"{value!r} is not a UTC offset")
    sign = -1 if value[0] == "-" else 1
    seconds = int(value[1:3]) * 3600 + int(value[3:5]) * 60 + int(value[5:7] or 0)
    return timedelta(seconds=sign * seconds)


@dataclass(frozen=True)
class Observance:
    starts: datetime  # UTC instant of the change
    offset_from: timedelta
    offset_to: timedelta


def observances(tz: Component) -> list[Observance]:
    found = []
    for child in tz.children:
        if child.name not in ("STANDARD", "DAYLIGHT"):
            raise IcalError(f"{child.name} inside VTIMEZONE")
        start = child.one("DTSTART").value
        if not LOCAL_TIME.fullmatch(start):
            raise IcalError(f"an observance's DTSTART must be a local time: {start!r}")
        if child.all("RRULE") or child.all("RDATE"):
            raise IcalError("this reader does not follow recurrence rules")
        offset_from = _offset(child.one("TZOFFSETFROM").value)
        offset_to = _offset(child.one("TZOFFSETTO").value)
        local = datetime.strptime(start, "%Y%m%dT%H%M%S")
        found.append(Observance((local - offset_from).replace(tzinfo=UTC), offset_from, offset_to))
    if not found:
        raise IcalError("a VTIMEZONE needs an observance")
    found.sort(key=lambda o: o.starts)
    return found


def _offset_at(obs: list[Observance], instant: datetime) -> timedelta | None:
    current = None
    for o in obs:
        if o.starts <= instant:
            current = o.offset_to
    return current


def start_of(event: Component, zones: dict[str, list[Observance]]) -> datetime:
    """The event's DTSTART as a UTC instant, read through the feed's VTIMEZONE (the first
    occurrence of a repeated local time, as RFC 5545 says)."""
    prop = event.one("DTSTART")
    if "TZID" not in prop.params:
        return _utc(prop.value)
    obs = zones.get(prop.params["TZID"])
    if obs is None:
        raise IcalError(f"TZID {prop.params['TZID']} has no VTIMEZONE")
    if not LOCAL_TIME.fullmatch(prop.value):
        raise IcalError(f"DTSTART with TZID must be a local time: {prop.value!r}")
    local = datetime.strptime(prop.value, "%Y%m%dT%H%M%S")
    candidates = sorted(
        {(local - o.offset_to).replace(tzinfo=UTC) for o in obs}
        | {(local - obs[0].offset_from).replace(tzinfo=UTC)}
    )
    for instant in candidates:
        offset = _offset_at(obs, instant)
        if offset is not None and (local - offset).replace(tzinfo=UTC) == instant:
            return instant
    raise IcalError(f"{prop.value} is not a time in {prop.params['TZID']} (before its range?)")


def duration_of(event: Component) -> timedelta:
    value = event.one("DURATION").value
    if not DURATION.fullmatch(value):
        raise IcalError(f"{value!r} is not a DURATION")
    total = timedelta()
    for amount, unit in re.findall(r"(\d+)([WDHMS])", value):
        total += timedelta(**{UNITS[unit]: int(amount)})
    return -total if value.startswith("-") else total


def check_feed(data: bytes) -> tuple[Component, dict[str, list[Observance]]]:
    """Parse and check a whole feed; return the VCALENDAR and its zones' observances."""
    cal = parse(data)
    if cal.name != "VCALENDAR":
        raise IcalError(f"the top component is {cal.name}")
    if cal.one("VERSION").value != "2.0":
        raise IcalError("VERSION must be 2.0")
    if not cal.one("PRODID").value:
        raise IcalError("PRODID is empty")
    zones: dict[str, list[Observance]] = {}
    uids: set[str] = set()
    for child in cal.children:
        if child.name == "VTIMEZONE":
            tzid = child.one("TZID").value
            if tzid in zones:
                raise IcalError(f"two VTIMEZONEs for {tzid}")
            zones[tzid] = observances(child)
        elif child.name != "VEVENT":
            raise IcalError(f"unexpected component {child.name}")
    for event in (c for c in cal.children if c.name == "VEVENT"):
        uid = event.text("UID")
        if not uid or uid in uids:
            raise IcalError(f"UID {uid!r} is empty or repeated")
        uids.add(uid)
        _utc(event.one("DTSTAMP").value)
        start_of(event, zones)
        if event.all("DTEND") and event.all("DURATION"):
            raise IcalError("DTEND and DURATION together")
        if event.all("DURATION"):
            duration_of(event)
        event.text("SUMMARY")
        for name in ("DESCRIPTION",):
            if event.maybe(name) is not None:
                event.text(name)
        for prop in event.all("CATEGORIES"):
            text_list(prop.value)
        status = event.maybe("STATUS")
        if status is not None and status.value not in STATUSES:
            raise IcalError(f"STATUS {status.value}")
        sequence = event.maybe("SEQUENCE")
        if sequence is not None and not sequence.value.isdigit():
            raise IcalError(f"SEQUENCE {sequence.value}")
        for name in ("CREATED", "LAST-MODIFIED"):
            stamp = event.maybe(name)
            if stamp is not None:
                _utc(stamp.value)
    return cal, zones
