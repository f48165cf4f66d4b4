"""RTMP ingest, sans-IO: the session, its events and limits, FLV payload parsing.

The asyncio listener (kitch/server/rtmp.py) drives :class:`RtmpServerSession`; nothing here
does I/O or reads the clock.
"""

from kitch.rtmp.errors import RtmpProtocolError, UnsupportedCodecError
from kitch.rtmp.events import (
    Connected,
    Event,
    MediaReceived,
    MetadataReceived,
    PublishRequested,
    Refused,
    Unpublished,
)
from kitch.rtmp.limits import RtmpLimits
from kitch.rtmp.session import RtmpServerSession, State

__all__ = [
    "Connected",
    "Event",
    "MediaReceived",
    "MetadataReceived",
    "PublishRequested",
    "Refused",
    "RtmpLimits",
    "RtmpProtocolError",
    "RtmpServerSession",
    "State",
    "Unpublished",
    "UnsupportedCodecError",
]
