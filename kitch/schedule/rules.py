"""What a scheduled stream may be: its start (an instant, or a wall-clock time in its zone), its
time zone name, its duration, and how far ahead it may be. Pure functions: ``now`` and the
loaded zone come from the caller.

Every refusal is a :class:`ScheduleError` with a stable ``code`` and a message fit for a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

#: A scheduled stream starts at most this far ahead.
MAX_AHEAD = timedelta(days=90)
#: Expected duration bounds, in minutes.
MIN_DURATION_MINUTES = 5
MAX_DURATION_MINUTES = 24 * 60
DEFAULT_DURATION_MINUTES = 60
#: Upcoming (not cancelled, not yet ended) scheduled streams per channel.
MAX_UPCOMING = 50
#: A broadcast that starts this long before a scheduled start, or up to LINK_AFTER after it,
#: is that scheduled stream.
LINK_BEFORE = timedelta(minutes=30)
LINK_AFTER = timedelta(minutes=60)
#: The "starting now" notification is skipped when it would come later than this after the
#: start (the server was down at the time): a late "starting now" would be wrong.
START_NOTICE_LATE = timedelta(minutes=10)

MAX_START_TEXT = 40
#: An IANA zone name: "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC".
ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,32}(?:/[A-Za-z0-9_+-]{1,32}){0,2}")
MAX_ZONE_NAME = 64


class ScheduleError(ValueError):
    """A refused schedule: ``code`` is stable for clients, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_zone_name(name: object) -> str:
    """``name`` if it has the shape of an IANA zone name (whether the zone exists is the
    caller's look-up); ScheduleError ``unknown_time_zone`` otherwise."""
    if not isinstance(name, str) or len(name) > MAX_ZONE_NAME or not ZONE_NAME.fullmatch(name):
        raise ScheduleError(
            "unknown_time_zone", "timezone must be an IANA time zone name such as Europe/Paris"
        )
    return name


def parse_start(text: object, zone: tzinfo) -> datetime:
    """The start instant (aware, UTC, whole seconds) of ``text``: ISO 8601 with an offset or
    ``Z`` (the instant; the zone is only how it is shown), or without one (a wall-clock time in
    ``zone``). A wall-clock time that the zone skips (a daylight-saving gap) is refused; one it
    repeats (the hour after the clocks go back) means its first occurrence."""
    if not isinstance(text, str) or not text or len(text) > MAX_START_TEXT:
        raise ScheduleError(
            "invalid_start", "starts_at must be an ISO 8601 date and time, e.g. 2026-03-01T20:00"
        )
    if "T" not in text.upper() or not text[:4].isdigit():
        raise ScheduleError(
            "invalid_start", "starts_at needs a date and a time, e.g. 2026-03-01T20:00+01:00"
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(
            "invalid_start",
            "starts_at is not an ISO 8601 date and time (e.g. 2026-03-01T20:00:00+01:00)",
        ) from None
    moment = moment.replace(microsecond=0)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    local = moment.replace(tzinfo=zone, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != moment:
        raise ScheduleError(
            "nonexistent_time",
            f"{text} does not exist in the time zone (the clocks skip it): pick another time",
        )
    return instant


def check_start(start: datetime, now: datetime) -> None:
    """The start is in the future and at most :data:`MAX_AHEAD` away."""
    if start <= now:
        raise ScheduleError("start_in_past", "the start time has passed: pick a time ahead")
    if start - now > MAX_AHEAD:
        raise ScheduleError(
            "start_too_far_ahead",
            f"a stream can be scheduled at most {MAX_AHEAD.days} days ahead",
        )


def check_duration(minutes: object) -> int:
    """The expected duration in whole minutes, within the bounds."""
    if type(minutes) is not int or not (MIN_DURATION_MINUTES <= minutes <= MAX_DURATION_MINUTES):
        raise ScheduleError(
            "invalid_duration",
            f"duration_minutes must be a whole number from {MIN_DURATION_MINUTES} to "
            f"{MAX_DURATION_MINUTES} (24 hours)",
        )
    return minutes


@dataclass(frozen=True)
class Due:
    """What a scheduled stream's notifications need at ``now``: ``remind`` / ``start`` say to
    store that notification now; ``skip_reminder`` / ``skip_start`` say to mark it done without
    sending (too late to be right)."""

    remind: bool = False
    skip_reminder: bool = False
    start: bool = False
    skip_start: bool = False


def due(
    starts_at: float,
    now: float,
    lead: float,
    *,
    reminded: bool,
    start_noticed: bool,
) -> Due:
    """Decide a scheduled stream's notifications at ``now`` (Unix seconds). The reminder is due
    ``lead`` seconds before the start (``lead`` 0: no reminder) and only while the stream has
    not started; the start notice is due at the start and at most :data:`START_NOTICE_LATE`
    after it."""
    remind = skip_reminder = start = skip_start = False
    if not reminded:
        if lead <= 0 or now >= starts_at:
            skip_reminder = True
        elif now >= starts_at - lead:
            remind = True
    if not start_noticed and now >= starts_at:
        if now - starts_at <= START_NOTICE_LATE.total_seconds():
            start = True
        else:
            skip_start = True
    return Due(remind, skip_reminder, start, skip_start)


def next_due(starts_at: float, lead: float, *, reminded: bool) -> float:
    """When the next notification of a stream falls due (Unix seconds)."""
    if not reminded and lead > 0:
        return starts_at - lead
    return starts_at


def wall_text(moment: datetime) -> str:
    """``2026-03-01T20:00:00+01:00``: the moment in its own zone, seconds, no fraction."""
    return moment.replace(microsecond=0).isoformat()
