"""Scheduled streams and analytics against a real `kitch serve`: the reminder and the start
notice reach a follower's events socket (once, across a restart of the server); a real RTMP
publish near the scheduled time links the broadcast to it; and a broadcast's analytics match a
scripted audience: media-playlist requests from distinct User-Agents over loopback, messages
through the real chat socket, follows through the API."""

from __future__ import annotations

import itertools
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.follows.conftest import Frame, drain, events, frames_until
from tests.server.conftest import BackgroundPublisher
from tests.support.media import Fixture
from tests.support.server import Account, KitchServer, serving

pytestmark = pytest.mark.slow

API = "/api/v1"


def _schedule(server: KitchServer, who: Account, start: datetime, **extra: Any) -> dict[str, Any]:
    status, made = server.request(
        "POST",
        f"{API}/channels/{who.username}/schedule",
        {"title": "Speedrun night", "starts_at": start.isoformat(), "timezone": "Europe/Paris",
         **extra},
        token=who.access_token,
    )  # fmt: skip
    assert status == 201, made
    result: dict[str, Any] = made
    return result


def _is_note(kind: str) -> Any:
    return lambda f: f["type"] == "notification" and f["kind"] == kind


def test_a_follower_is_reminded_and_told_of_the_start_once_across_a_restart(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, "--schedule-reminder", "10", "--ladder", "off") as server:
        alice = server.create_account("alice")
        bob = server.create_account("bob")
        carol = server.create_account("carol")  # follows nobody
        assert (
            server.request("PUT", f"{API}/channels/alice/follow", token=bob.access_token)[0] == 200
        )
        start = (datetime.now(UTC) + timedelta(seconds=16)).replace(microsecond=0)
        with (
            events(server, bob.access_token) as follower,
            events(server, carol.access_token) as other,
        ):
            made = _schedule(server, alice, start)
            seen = frames_until(follower, _is_note("schedule_reminder"), 12)
            reminded = time.time()
            note = seen[-1]
            assert note["channel"] == "alice" and note["title"] == "Speedrun night"
            assert note["schedule_id"] == made["id"] and note["starts_at"] == start.timestamp()
            assert start.timestamp() - 10.5 <= reminded < start.timestamp(), (reminded, start)
            assert not any(f["type"] == "notification" for f in drain(other, 0.3))
        took = server.stop()  # SIGTERM
        assert took < 10
        server.start()
        with events(server, bob.access_token) as follower:
            if time.time() < start.timestamp() - 0.5:
                frame = frames_until(follower, _is_note("schedule_start"), 12)[-1]
                assert time.time() >= start.timestamp() - 0.2
                assert frame["schedule_id"] == made["id"]
                later = drain(follower, 2.0)
                assert not any(f["type"] == "notification" for f in later), later
            else:  # the restart was slower than the schedule: sent at start-up, read below
                pytest.fail("the server took longer than 15 s to restart")
        listed = server.get(f"{API}/me/notifications", token=bob.access_token)
        kinds = [n["kind"] for n in listed["notifications"]]
        assert kinds == ["schedule_start", "schedule_reminder"] and listed["unread"] == 2
        assert server.get(f"{API}/me/notifications", token=carol.access_token)["unread"] == 0


# -- a broadcast near its scheduled time, and its analytics ---------------------------------------

WINDOW = 1.5  # --viewer-window
TICK = 0.5  # --viewer-tick
AGENTS = [f"scripted-viewer-{i}" for i in range(6)]


@dataclass
class Audience:
    """What the server counts as viewers, logged: media-playlist requests from distinct
    User-Agents, each as (sent, answered, status), and open chat sockets (a client with the chat
    open counts while it is open), each as (opening, opened, closing, closed)."""

    server: KitchServer
    log: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    sessions: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)

    def read(self, agent: str) -> str:
        req = urllib.request.Request(
            f"{self.server.base}/hls/alice/source/index.m3u8", headers={"User-Agent": agent}
        )
        sent = time.time()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text: str = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as err:
            text, status = "", err.code
        self.log.setdefault(agent, []).append((sent, time.time(), status))
        return text

    def watch(self, agents: list[str], seconds: float, every: float = 0.25) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for agent in agents:
                self.read(agent)
            time.sleep(every)

    def bounds(self, t: float, margin: float = 0.1) -> tuple[int, int]:
        """How many clients the server can have counted at sample time ``t`` (rounded to 0.1 s
        when stored): at least those certainly seen (a playlist answered within the window, or
        the chat open all around ``t``), at most those possibly (any request but a 404, which is
        not counted, or a chat socket open at some point near ``t``)."""
        surely: set[str] = set()
        possibly: set[str] = set()
        for agent, hits in self.log.items():
            for sent, got, status in hits:
                if t - WINDOW + margin < sent and got <= t - margin and status == 200:
                    surely.add(agent)
                if sent <= t + margin and got > t - WINDOW - margin and status != 404:
                    possibly.add(agent)
        for agent, spans in self.sessions.items():
            for opening, opened, closing, closed in spans:
                if opened <= t - margin and closing >= t + margin:
                    surely.add(agent)
                if opening <= t + margin and closed >= t - margin:
                    possibly.add(agent)
        return len(surely), len(possibly)


class ChatClient:
    """A signed-in chat socket on alice's room."""

    def __init__(self, ws: ClientConnection, token: str) -> None:
        self.ws = ws
        self.recv_until("welcome")
        self.ws.send(msgpack.packb({"type": "auth", "token": token}))
        welcome = self.recv_until("welcome")
        assert welcome["you"]["user"], welcome

    def recv_until(self, kind: str, **match: Any) -> Frame:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame: Frame = msgpack.unpackb(self.ws.recv(timeout=10))
            if frame["type"] == "error":
                raise AssertionError(frame)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame
        raise AssertionError(f"no {kind} frame")

    def say(self, text: str) -> None:
        self.ws.send(msgpack.packb({"type": "say", "text": text, "nonce": text[:32]}))
        self.recv_until("message", text=text)


#: The User-Agent of the test's chat sockets: to the viewer count they are one client.
CHAT_AGENT = "scripted-chatters"


@contextmanager
def chatting(
    server: KitchServer, audience: Audience, *accounts: Account
) -> Iterator[list[ChatClient]]:
    """Signed-in chat sockets on alice's room, logged in the audience (an open chat counts as a
    viewer)."""
    url = f"ws://127.0.0.1:{server.http_port}/ws/chat/alice"
    opening = time.time()
    with ExitStack() as stack:
        clients = [
            ChatClient(
                stack.enter_context(connect(url, open_timeout=5, user_agent_header=CHAT_AGENT)),
                a.access_token,
            )
            for a in accounts
        ]
        opened = time.time()
        try:
            yield clients
        finally:
            closing = time.time()
    audience.sessions.setdefault(CHAT_AGENT, []).append((opening, opened, closing, time.time()))


def _follow(server: KitchServer, who: Account, on: bool = True) -> None:
    status, _ = server.request("PUT" if on else "DELETE", f"{API}/channels/alice/follow",
                               token=who.access_token)  # fmt: skip
    assert status == 200


def test_a_broadcast_near_its_time_is_linked_and_its_analytics_match_the_audience(
    tmp_path: Path, av_fixture: Fixture
) -> None:
    args = ("--viewer-window", str(WINDOW), "--viewer-tick", str(TICK), "--ladder", "off",
            "--schedule-reminder", "60")  # fmt: skip
    with serving(tmp_path, *args) as server:
        alice = server.create_account("alice")
        bob, carol, dave, erin = (
            server.create_account(n) for n in ("bob", "carol", "dave", "erin")
        )
        # a stream five minutes ahead, another an hour and a half ahead (outside the window)
        soon = _schedule(server, alice, datetime.now(UTC) + timedelta(minutes=5))
        later = _schedule(server, alice, datetime.now(UTC) + timedelta(minutes=90), title="Later")
        _follow(server, bob)  # before the broadcast: not a new follower of it
        audience = Audience(server)
        with chatting(server, audience, bob) as (bob_chat,):
            bob_chat.say("before the stream")  # before: not counted
        with events(server) as directory:
            time.sleep(0.2)
            pub = BackgroundPublisher(server.rtmp_url(alice.stream_key), av_fixture)
            try:
                assert pub.started.wait(15), pub.error
                # the go-live starts the count afresh: the audience comes after it
                frames_until(directory, lambda f: f["type"] == "channel" and f["live"] is True, 20)
                # viewer 0 waits for media: it is one of the scripted audience
                server.wait_for(lambda: "#EXTINF" in audience.read(AGENTS[0]), 20, "media")
                channel = server.channel("alice")
                assert channel["live"]
                broadcast_id = channel["stream"]["id"]
                server.wait_for(
                    lambda: (
                        server.get(f"{API}/channels/alice/schedule")["schedule"][0]["broadcast_id"]
                        == broadcast_id
                    ),
                    10,
                    "the link to the scheduled stream",
                )
                with chatting(server, audience, bob, carol) as (bob_chat, carol_chat):
                    _follow(server, carol)
                    _follow(server, dave)
                    _follow(server, erin)
                    _follow(server, erin, on=False)  # undone: not counted
                    for i in range(3):
                        bob_chat.say(f"bob says {i}")
                        carol_chat.say(f"carol says {i}")
                # the scripted audience: 3 viewers, then 6, then 2 (each set within the 6)
                audience.watch(AGENTS[:3], 3.0)
                audience.watch(AGENTS, 3.0)
                audience.watch(AGENTS[4:], 3.0)
                time.sleep(WINDOW + 2 * TICK)  # nobody watches: the count falls to 0
            finally:
                pub.stop()
            assert pub.error is None, pub.error
            server.wait_for(lambda: not server.channel("alice")["live"], 10, "offline")
        with chatting(server, audience, carol) as (carol_chat,):
            carol_chat.say("after the stream")  # after: not counted

        def stored() -> dict[str, Any]:
            answer: dict[str, Any] = server.get(
                f"{API}/me/analytics/{broadcast_id}", token=alice.access_token
            )
            return answer

        server.wait_for(lambda: stored()["broadcast"]["viewer_samples"] > 0, 10, "stored samples")
        detail = stored()
        row = detail["broadcast"]
        series = [(p["t"], p["viewers"]) for p in detail["viewers"]]
        counts = [n for _, n in series]
        print("viewer samples:", counts)
        # every sample is what the server could have seen of our requests at that moment
        for t, n in series:
            low, high = audience.bounds(t)
            assert low <= n <= high, (t, n, low, high)
        assert max(counts) == 6 and row["peak_viewers"] == 6
        assert 3 in counts and 2 in counts and counts[-1] == 0
        assert row["average_viewers"] == round(statistics.fmean(counts), 2)
        assert row["viewer_samples"] == len(counts) and detail["tick_seconds"] == TICK
        assert all(0.3 < b - a < 1.0 for (a, _), (b, _) in itertools.pairwise(series))
        assert row["chat_messages"] == 6
        assert row["new_followers"] == 2
        assert row["schedule"] == {"id": soon["id"], "title": "Speedrun night"}
        started = datetime.fromisoformat(row["started_at"]).timestamp()
        ended = datetime.fromisoformat(row["ended_at"]).timestamp()
        assert row["duration_seconds"] == pytest.approx(ended - started, abs=0.1)
        assert 12 < row["duration_seconds"] < 60
        listed = server.get(f"{API}/me/analytics", token=alice.access_token)["broadcasts"]
        assert listed == [row]
        # the schedule shows the link; the later stream is untouched; no schedule notification
        schedule = {s["id"]: s for s in server.get(f"{API}/channels/alice/schedule")["schedule"]}
        assert schedule[soon["id"]]["broadcast_id"] == broadcast_id
        assert schedule[later["id"]]["broadcast_id"] is None
        notes = server.get(f"{API}/me/notifications", token=bob.access_token)["notifications"]
        assert [n["kind"] for n in notes] == ["live"]
