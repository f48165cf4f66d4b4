"""The follower notifications of scheduled streams: a background task of the app.

It sleeps until the next notification falls due (at most ``MAX_SLEEP``, and it is woken at once
when a stream is scheduled, edited or cancelled), then stores each due notification
(:func:`kitch.db.schedule.notify`: the notifications and the stream's flag in one transaction,
so each is sent once even across a restart) and pushes it on the events socket. A reminder
comes ``lead`` seconds before the start (the ``schedule_reminder`` setting), the start notice
at the start; a stream linked to a broadcast (its streamer went live for it) sends neither,
the go-live notification has told its followers. Notifications that the server was down for
are skipped when they would come too late (see :func:`kitch.schedule.rules.due`).

All the work is database statements on aiosqlite's thread: the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from kitch.api.events import Events
from kitch.db import Database
from kitch.db import schedule as db
from kitch.schedule import rules

log = logging.getLogger("kitch.schedule")

#: Longest sleep between two looks at the schedule (a safety net for clock changes).
MAX_SLEEP = 60.0
#: Shortest sleep, so a due time that keeps failing cannot spin the loop.
MIN_SLEEP = 0.05
#: Sleep after an error.
ERROR_SLEEP = 5.0


class Reminders:
    def __init__(
        self, events: Events, lead: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.events = events
        self.lead = lead
        self.clock = clock
        self.db: Database | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, database: Database) -> None:
        self.db = database
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="schedule-reminders")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def changed(self) -> None:
        """A stream was scheduled, edited or cancelled: look again now."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                next_at = await self.run_once(self.clock())
                delay = MAX_SLEEP if next_at is None else next_at - self.clock()
                delay = min(MAX_SLEEP, max(MIN_SLEEP, delay))
            except Exception:
                log.exception("scheduled stream notifications failed")
                delay = ERROR_SLEEP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def run_once(self, now: float) -> float | None:
        """Send what is due at ``now``; return when the next notification falls due."""
        assert self.db is not None
        for stream in await db.due(self.db, now, self.lead):
            decision = rules.due(
                stream.starts_at,
                now,
                self.lead,
                reminded=stream.reminded,
                start_noticed=stream.start_noticed,
            )
            if decision.remind or decision.skip_reminder:
                notes = await db.notify(self.db, stream.id, db.REMINDER, now, send=decision.remind)
                self.events.notify(notes)
            if decision.start or decision.skip_start:
                notes = await db.notify(self.db, stream.id, db.START, now, send=decision.start)
                self.events.notify(notes)
        return await db.next_due(self.db, self.lead)
