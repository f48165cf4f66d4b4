"""The native frame path is on in a real server: a PyAV publisher's common frames reach the
passthrough muxer through ``kitch._ingest.FrameLane``, which the connection's closing log line
counts (with the twins, ``KITCH_PUREPYTHON=1``, it takes none: the Python path does it all).
The ladder is off here: a running ladder wants every frame, so then they all go the Python
way; the thumbnails (on, as by default) read keyframes only and leave the lane on."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kitch import twins
from tests.server.conftest import BackgroundPublisher, is_live
from tests.support.media import make_fixture
from tests.support.server import KitchServer

pytestmark = pytest.mark.slow

CLOSED = re.compile(
    r"channel=lane: closed \([^)]*\); (\d+) of (\d+) media packets took the native path"
)


def test_a_publishers_common_frames_take_the_native_path(
    server_factory: Callable[..., KitchServer], media_dir: Path
) -> None:
    server = server_factory("--ladder", "off")
    fixture = make_fixture(media_dir, seconds=2)
    acct = server.create_account("lane")
    pub = BackgroundPublisher(server.rtmp_url(acct.stream_key), fixture)
    try:
        server.wait_for(lambda: is_live(server, "lane"), 15, "live")
        time.sleep(8)  # past the first 4 s of media, while the segmenter may move its clock
    finally:
        pub.stop()
    assert pub.error is None, pub.error
    server.wait_for(lambda: CLOSED.search(server.log()), 10, "the closing log line")
    found = CLOSED.search(server.log())
    assert found is not None
    native, total = int(found[1]), int(found[2])
    print(f"{native} of {total} media packets took the native path")
    assert total > 200
    assert native >= total * 0.3 if twins.NATIVE else native == 0
