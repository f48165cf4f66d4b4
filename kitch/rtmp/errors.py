"""Errors of the RTMP ingest. Every malformed input ends in :class:`RtmpProtocolError`."""

from __future__ import annotations

from kitch.twins import rtmp as _core

#: Malformed or over-limit input, raised by the chunk reader (native or twin), the handshake and
#: AMF0; the session turns it into :class:`RtmpProtocolError`.
RtmpError = _core.RtmpError


class RtmpProtocolError(RtmpError):
    """The peer broke the protocol or a limit; the connection must be closed."""


class UnsupportedCodecError(RtmpProtocolError):
    """Well-formed media in a codec Kitch does not ingest; the session refuses the publish."""
