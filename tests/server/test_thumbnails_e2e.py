"""Live thumbnails end to end: a real `kitch serve` with a 1 s interval, a real RTMP publisher,
the pictures fetched over HTTP and decoded with PyAV; then the offline picture from the disk,
also after a restart."""

from __future__ import annotations

import io
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import av
import pytest

from tests.server.conftest import BackgroundPublisher, is_live
from tests.support.media import Fixture
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow

FLAGS = ("--thumbnail-interval", "1", "--reconnect-grace", "1")


def fetch(server: KitchServer, path: str, **headers: str) -> tuple[int, Any, Message]:
    return server.exchange("GET", path, headers=headers)


def picture_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def version(headers: Message) -> int:
    return int(str(headers["ETag"]).strip('"'))


def test_live_pictures_refresh_and_the_last_one_stays_after_the_end_and_a_restart(
    server_factory: Any, av_fixture: Fixture, tmp_path: Path
) -> None:
    server: KitchServer = server_factory(*FLAGS)
    acct = server.create_account("thumbs")
    status, body, _ = fetch(server, "/thumbnails/thumbs/640x360.jpg")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert server.channel("thumbs")["thumbnail_url"] is None

    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), av_fixture)
    try:
        server.wait_for(
            lambda: fetch(server, "/thumbnails/thumbs/640x360.jpg")[0] == 200, 20, "a picture"
        )
        status, big, headers = fetch(server, "/thumbnails/thumbs/640x360.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert picture_size(big) == (640, 360)
        assert headers["Cache-Control"] == "public, max-age=1"
        first, first_modified = version(headers), parsedate_to_datetime(headers["Last-Modified"])
        status, small, _ = fetch(server, "/thumbnails/thumbs/320x180.jpg")
        assert status == 200 and picture_size(small) == (320, 180)
        status, _, again_headers = fetch(
            server, "/thumbnails/thumbs/640x360.jpg", **{"If-None-Match": headers["ETag"]}
        )
        # 304, unless a newer picture came in meanwhile
        assert status == 304 or (status == 200 and version(again_headers) > first)

        # the picture refreshes: a newer version and a later Last-Modified
        server.wait_for(
            lambda: version(fetch(server, "/thumbnails/thumbs/640x360.jpg")[2]) > first,
            15,
            "a newer picture",
        )
        server.wait_for(
            lambda: (
                parsedate_to_datetime(
                    fetch(server, "/thumbnails/thumbs/640x360.jpg")[2]["Last-Modified"]
                )
                > first_modified
            ),
            15,
            "a later Last-Modified",
        )
        url = server.channel("thumbs")["thumbnail_url"]
        assert url.startswith("/thumbnails/thumbs/640x360.jpg?v=")
        assert int(url.rsplit("=", 1)[1]) > first
        listed = server.get("/api/v1/channels")["channels"]
        assert listed[0]["name"] == "thumbs" and listed[0]["thumbnail_url"].startswith(
            "/thumbnails/thumbs/640x360.jpg?v="
        )
        status, health = server.request(
            "GET", "/api/v1/channels/thumbs/health", token=acct.access_token
        )
        assert status == 200, health
        thumbs = health["thumbnails"]
        assert thumbs["state"] == "running" and thumbs["made"] >= 2 and thumbs["failures"] == 0
        assert thumbs["last_at"] and 0 < thumbs["encode_ms"] < 1000 and thumbs["interval"] == 1
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    server.wait_for(lambda: not is_live(server, "thumbs"), 10, "offline")

    # the last picture, from the disk
    root = tmp_path / "data" / "thumbnails"
    server.wait_for(lambda: list(root.glob("*-thumbs/320x180.jpg")), 10, "saved")
    (folder,) = root.glob("*-thumbs")
    saved = (folder / "640x360.jpg").read_bytes()
    server.wait_for(
        lambda: fetch(server, "/thumbnails/thumbs/640x360.jpg")[1] == saved, 10, "served from disk"
    )
    status, offline, headers = fetch(server, "/thumbnails/thumbs/640x360.jpg")
    assert status == 200 and picture_size(offline) == (640, 360)
    last = version(headers)
    assert server.channel("thumbs")["thumbnail_url"].endswith(f"?v={last}")

    # after a restart
    server.stop()
    again: KitchServer = server_factory(*FLAGS)
    status, body, headers = fetch(again, "/thumbnails/thumbs/640x360.jpg")
    assert status == 200 and body == saved and version(headers) == last
    assert (folder / "320x180.jpg").read_bytes() == fetch(again, "/thumbnails/thumbs/320x180.jpg")[
        1
    ]
    assert again.channel("thumbs")["thumbnail_url"] == f"/thumbnails/thumbs/640x360.jpg?v={last}"
    status, _, _ = fetch(again, "/thumbnails/thumbs/640x360.jpg", **{"If-None-Match": f'"{last}"'})
    assert status == 304
    status, body, _ = fetch(again, "/thumbnails/nobody/640x360.jpg")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "Traceback" not in server.log() + again.log()
