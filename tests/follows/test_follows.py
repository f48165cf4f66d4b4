"""Follows and the events socket over real HTTP and real websockets against `kitch serve`."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.follows.conftest import drain, events, frames_until, recv, send, ws_url
from tests.support.server import KitchServer


def test_follow_unfollow_and_counts(server: KitchServer) -> None:
    alice = server.create_account("alice")
    bob = server.create_account("bob")
    carol = server.create_account("carol")
    path = "/api/v1/channels/alice/follow"

    assert server.request("PUT", path)[0] == 401
    status, body = server.request("PUT", "/api/v1/channels/nobody/follow", token=bob.access_token)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = server.request("PUT", path, token=alice.access_token)
    assert status == 400 and body["error"]["code"] == "cannot_follow_self"

    for _ in range(2):  # idempotent
        assert server.request("PUT", path, token=bob.access_token) == (
            200,
            {"following": True, "follower_count": 1},
        )
    assert server.request("PUT", path, token=carol.access_token)[1]["follower_count"] == 2

    anonymous = server.channel("alice")
    assert anonymous["follower_count"] == 2 and "following" not in anonymous
    assert "viewers" not in anonymous  # not live
    assert server.get("/api/v1/channels/alice", token=bob.access_token)["following"] is True
    mine = server.get("/api/v1/channels/alice", token=alice.access_token)
    assert mine["following"] is False and mine["follower_count"] == 2
    listed = {c["name"]: c for c in server.get("/api/v1/channels")["channels"]}
    assert listed["alice"]["follower_count"] == 2 and listed["bob"]["follower_count"] == 0

    following = server.get("/api/v1/me/following", token=bob.access_token)["channels"]
    assert [c["name"] for c in following] == ["alice"] and following[0]["following"] is True

    for _ in range(2):
        assert server.request("DELETE", path, token=bob.access_token) == (
            200,
            {"following": False, "follower_count": 1},
        )
    assert server.get("/api/v1/me/following", token=bob.access_token) == {"channels": []}
    assert server.request("GET", "/api/v1/me/following")[0] == 401


def test_notifications_read_validation(server: KitchServer) -> None:
    bob = server.create_account("bob")
    path = "/api/v1/me/notifications"
    assert server.get(path, token=bob.access_token) == {"notifications": [], "unread": 0}
    assert server.request("GET", path + "?limit=0", token=bob.access_token)[0] == 422
    assert server.request("GET", path + "?limit=99999", token=bob.access_token)[0] == 422
    for bad in ({}, {"ids": [1], "all": True}, {"ids": "1"}, {"ids": [True]}, {"all": 1}):
        status, body = server.request("POST", path + "/read", bad, token=bob.access_token)
        assert status == 422 and body["error"]["code"] == "validation_error", bad
    assert server.request("POST", path + "/read", {"all": True}, token=bob.access_token) == (
        200,
        {"unread": 0},
    )
    assert server.request("POST", path + "/read", {"all": True})[0] == 401


def test_events_socket_guards(server: KitchServer) -> None:
    bob = server.create_account("bob")
    # A page on another site cannot open the socket.
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(server), origin="http://evil.example", open_timeout=5)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with events(server) as ws:
        send(ws, {"type": "ping"})
        assert recv(ws, 5) == {"type": "pong"}
        send(ws, {"type": "auth", "token": "not-a-token"})
        assert recv(ws, 5)["code"] == "invalid_token"
        ws.send(b"\xc1")  # not msgpack
        assert recv(ws, 5)["code"] == "bad_frame"
        send(ws, {"type": "say"})
        assert recv(ws, 5)["code"] == "unknown_type"
        # A revoked access token is refused.
        tokens = server.login("bob", bob.password)
        status, _ = server.request(
            "POST", "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}
        )
        assert status in (200, 204)
        send(ws, {"type": "auth", "token": tokens["access_token"]})
        assert recv(ws, 5)["code"] == "token_revoked"
        # An oversized frame closes the socket.
        ws.send(b"\x00" * 10_000)
        with pytest.raises(ConnectionClosed) as closed:
            drain(ws, 5)
            recv(ws, 1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # The server's own pages may.
    origin = f"http://127.0.0.1:{server.http_port}"
    with connect(ws_url(server), origin=origin, open_timeout=5) as ws:  # type: ignore[arg-type]
        assert recv(ws, 5) == {"type": "hello", "user": None}


def test_title_changes_pushed_to_followers(server: KitchServer) -> None:
    alice = server.create_account("alice")
    bob = server.create_account("bob")
    server.request("PUT", "/api/v1/channels/alice/follow", token=bob.access_token)
    with events(server, bob.access_token) as follower, events(server) as anonymous:
        status, _ = server.request(
            "PATCH",
            "/api/v1/channels/alice",
            {"title": "Speedrun tonight", "category": "Retro Games"},
            token=alice.access_token,
        )
        assert status == 200
        frame = frames_until(follower, lambda f: f["type"] == "channel", 5)[-1]
        assert frame == {
            "type": "channel",
            "name": "alice",
            "live": False,
            "title": "Speedrun tonight",
            "category": "Retro Games",
            "viewers": None,
        }
        # Not live and not followed: nothing for the anonymous socket.
        assert [f for f in drain(anonymous, 1) if f["type"] == "channel"] == []


@pytest.mark.slow
def test_a_password_change_closes_the_signed_in_socket_at_once(server: KitchServer) -> None:
    server.create_account("carl")
    tokens = server.login("carl", "correct horse 1")
    with events(server, tokens["access_token"]) as ws:
        drain(ws, 0.5)  # the hello frames
        body = {"current_password": "correct horse 1", "new_password": "a new long one 2"}
        t0 = time.monotonic()
        status, _ = server.request(
            "POST", "/api/v1/me/password", body, token=tokens["access_token"]
        )
        assert status == 200
        with pytest.raises(ConnectionClosed) as closed:
            drain(ws, 5)
            recv(ws, 1)
        took = time.monotonic() - t0
        print(f"events socket closed {took:.2f} s after the password change")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert took < 4  # at once, not at the next 25 s session check


@pytest.mark.slow
def test_signing_out_closes_the_signed_in_socket(server: KitchServer) -> None:
    server.create_account("bob")
    tokens = server.login("bob", "correct horse 1")
    with events(server, tokens["access_token"]) as ws:
        status, _ = server.request(
            "POST", "/api/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}
        )
        assert status == 204
        with pytest.raises(ConnectionClosed) as closed:
            drain(ws, 40)  # the session is checked every 25 s
            recv(ws, 1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
