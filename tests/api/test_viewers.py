"""ViewerCounter: playlist readers within the window, plus open chat sockets, once per client."""

from __future__ import annotations

from typing import Any

from kitch.api.viewers import ViewerCounter


def scope(address: str, agent: str) -> dict[str, Any]:
    return {"client": (address, 50000), "headers": [(b"user-agent", agent.encode())]}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_union_of_players_and_chat_sockets() -> None:
    clock = Clock()
    counter = ViewerCounter(10.0, clock)
    counter.seen("alice", scope("10.0.0.1", "a"))
    assert counter.count("alice") == 1
    both = counter.chat_opened("alice", scope("10.0.0.1", "a"))  # same client: once
    assert counter.count("alice") == 1
    chat_only = counter.chat_opened("alice", scope("10.0.0.2", "a"))
    tab = counter.chat_opened("alice", scope("10.0.0.2", "a"))  # a second tab: still once
    assert counter.count("alice") == 2
    assert counter.count("bob") == 0
    counter.chat_closed("alice", tab)
    assert counter.count("alice") == 2
    counter.chat_closed("alice", chat_only)
    assert counter.count("alice") == 1
    # the player stops reloading: the open chat keeps the client counted
    clock.now += 11
    assert counter.count("alice") == 1
    counter.chat_closed("alice", both)
    assert counter.count("alice") == 0
    counter.chat_closed("alice", both)  # a repeat is harmless
    assert counter.count("alice") == 0


def test_forget_drops_players_not_chat_sockets() -> None:
    counter = ViewerCounter(10.0, Clock())
    counter.seen("alice", scope("10.0.0.1", "a"))
    counter.chat_opened("alice", scope("10.0.0.2", "a"))
    counter.forget("alice")  # a new broadcast: playlist reads start over
    assert counter.count("alice") == 1
