"""Events the sans-IO session reports (h11 style: frozen dataclasses, one module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kitch.media import MediaPacket

#: Scalar metadata values as they arrive in ``onMetaData`` (numbers are floats).
MetaValue = float | str | bool | None


@dataclass(frozen=True, slots=True)
class Connected:
    """The peer sent ``connect`` for our application and we answered Connect.Success."""

    app: str
    tc_url: str
    flash_ver: str
    fourcc_list: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PublishRequested:
    """The peer wants to publish; answer with ``accept_publish()`` or ``reject_publish()``.

    ``stream_key`` is the publish name without any ``?query`` part.
    """

    stream_key: str
    publish_type: str


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    """``@setDataFrame onMetaData`` (or a bare ``onMetaData``): scalar values only."""

    values: dict[str, MetaValue]


class MediaReceived(NamedTuple):
    """One media packet (or codec configuration) of the accepted publish (a named tuple, not a
    dataclass like the others: one is made per media message)."""

    packet: MediaPacket


@dataclass(frozen=True, slots=True)
class Unpublished:
    """The publisher stopped: ``reason`` is the command (FCUnpublish, deleteStream, closeStream)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The session refused the peer by itself (wrong app, bad publish name, unsupported codec).

    The refusal status is already queued in ``data_to_send()`` and ``wants_close`` is true.
    """

    code: str
    description: str


Event = Connected | PublishRequested | MetadataReceived | MediaReceived | Unpublished | Refused
