"""Scheduled streams without I/O: the rules a schedule must follow (:mod:`kitch.schedule.rules`)
and the iCalendar writer (:mod:`kitch.schedule.ical`). The clock and the time zones are passed
in; loading a zone (a file read) is the caller's job. See docs/SCHEDULE.md."""
