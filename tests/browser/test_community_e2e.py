"""Chat, moderation, follow and the go-live notification in two browser contexts against a real
`kitch serve`: a streamer and a viewer sign up in the UI, chat on the streamer's channel page,
the streamer times the viewer out from the message's menu, then finds them in the room
settings' banned list and unbans them there, and the viewer posts again; the viewer follows,
and a real RTMP publish (PyAV) lights the viewer's bell with one unread notification without a
reload.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import (
    ARTIFACTS,
    kitch_server,
    node_script,
    parse_result,
    publishing,
    read_until,
    say,
    stream_key,
)
from tests.support.media import Fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STREAMER = "e2e_caster"
VIEWER = "e2e_watcher"
PASSWORD = "correct horse battery staple"


def test_chat_timeout_follow_and_go_live(
    node_modules: Path, av_fixture: Fixture, tmp_path: Path
) -> None:
    extra = {"STREAMER": STREAMER, "VIEWER": VIEWER, "PASSWORD": PASSWORD}
    lines: list[str] = []
    with (
        kitch_server(tmp_path / "data") as kitch,
        node_script("community.mjs", kitch.base, **extra) as node,
    ):
        # the script chats, follows, then says READY and waits for GO to see the go-live
        if read_until(node, lines, "READY"):
            with publishing(kitch.rtmp_url(stream_key(kitch.base, STREAMER, PASSWORD)), av_fixture):
                say(node, "GO")
                out, err = node.communicate(timeout=300)
        else:
            out, err = node.communicate(timeout=60)
    result = parse_result("".join(lines) + out)
    c = result["checks"]
    print("community e2e checks:", c)
    assert node.returncode == 0, f"{result['errors']}\n{err[-3000:]}"
    # a signed-out tab's first cookie refresh answers 401 (the sign-up page, before signing up)
    signed_out = "/register: Failed to load resource: the server responded with a status of 401"
    assert [e for e in result["errors"] if signed_out not in e] == [], result["errors"]

    # both chat on the channel page and each sees the other's message
    assert c["registered"] and c["viewerSeesFollow"] and c["streamerSeesNoFollow"]
    assert c["viewerToStreamerMs"] < 10_000 and c["streamerToViewerMs"] < 10_000, c
    assert f"{VIEWER}: hello from {VIEWER}" in " ".join(c["viewerLog"]), c["viewerLog"]
    # HTML in a message is shown as text: no element made of it, no alert
    assert c["htmlShownAsText"], c
    assert c["imgInStreamerLog"] == 0 and c["imgInViewerLog"] == 0
    assert c["dialogs"] == []

    # the broadcaster moderates the viewer's messages in place; the viewer moderates nothing
    assert c["moderateButtons"] >= 2 and c["viewerModerateButtons"] == 0, c
    assert "Timeout 1 min" in c["menuButtons"] and "Delete" in c["menuButtons"], c["menuButtons"]
    assert c["viewerNotice"].startswith("You were timed out"), c["viewerNotice"]
    assert c["timeoutNoticeMs"] < 10_000
    assert f"{VIEWER} was timed out for 1 min" in c["streamerNotice"], c["streamerNotice"]
    # timed out: the composer waits out the minute, and nothing typed reaches the room
    assert c["sendDisabled"] and c["sendButtonText"].startswith("Wait "), c
    assert c["placeholder"] == "You are timed out"
    assert c["waitStatus"] and c["waitStatus"].startswith("Timed out:"), c["waitStatus"]
    assert not c["blockedReachedStreamer"] and not c["blockedInViewerLog"]

    # the broadcaster sees the timed-out viewer in the banned list, unbans them, and the viewer
    # can post again
    assert VIEWER in c["bannedRow"] and "Timed out until" in c["bannedRow"], c["bannedRow"]
    assert f"by {STREAMER}" in c["bannedRow"], c["bannedRow"]
    assert c["bannedRowGoneMs"] < 10_000 and c["bannedAfterUnban"] == 0, c
    assert c["viewerCanSendMs"] < 10_000 and c["viewerSendEnabled"], c
    assert c["afterUnbanMs"] < 10_000 and c["afterUnbanInViewerLog"], c
    log = c["moderationLog"]
    assert any(f"{STREAMER} unbanned {VIEWER}" in line for line in log), log
    assert any(f"{STREAMER} timed out {VIEWER} for 1 min" in line for line in log), log

    # follow, go live: one unread go-live notification in the bell, no reload
    assert c["followPressed"] == "true" and c["followerCount"].strip() == "1 follower", c
    assert c["bellBefore"] == "Notifications", c["bellBefore"]
    assert c["bellLabel"] == "Notifications, 1 unread" and c["unreadBadge"] == "1", c
    assert c["bellLabelLater"] == "Notifications, 1 unread", c["bellLabelLater"]
    assert c["notifications"] == [f"{STREAMER} is live"] or (
        len(c["notifications"]) == 1 and c["notifications"][0].startswith(f"{STREAMER} is live")
    ), c["notifications"]
    assert c["viewerReloads"] == 0
    assert c["notificationMs"] < 30_000, c["notificationMs"]
    for name in (
        "community-chat-streamer",
        "community-timed-out",
        "community-banned-list",
        "community-notification",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 1000
