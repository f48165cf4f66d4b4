"""Errors of the RTMP ingest. Every malformed input ends in :class:`RtmpProtocolError`."""

from __future__ import annotations

from kitch.rtmp.wire import RtmpError


class RtmpProtocolError(RtmpError):
    """The peer broke the protocol or a limit; the connection must be closed."""


class UnsupportedCodecError(RtmpProtocolError):
    """Well-formed media in a codec Kitch does not ingest; the session refuses the publish."""
