from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.media import Fixture, make_fixture

pytest_plugins = ["tests.support.postgres"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def av_fixture(media_dir: Path) -> Fixture:
    """4 s of 320x240 H.264 (1 s GOP, no B-frames) + AAC stereo, in FLV."""
    return make_fixture(media_dir)


@pytest.fixture(scope="session")
def bframes_fixture(media_dir: Path) -> Fixture:
    """4 s of 320x240 H.264 with 2 B-frames + AAC, in MP4 (ffmpeg -c copy carries the CTS)."""
    return make_fixture(media_dir, bframes=2, container="mp4")
