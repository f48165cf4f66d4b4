"""The outputs a broadcast fans out to: the sink interface and how their health is combined.

A sink is one consumer of a broadcast's packets: the passthrough HLS muxer
(:mod:`kitch.ingest.passthrough`, always the first), the rendition ladder, the thumbnails
(:mod:`kitch.ingest.thumbnails`), later recordings. The hub builds a broadcast's sinks when it
starts, from the factories it was given (in order; a factory answers None to stay out of that
broadcast), and calls each of them for every packet. ``now`` is the wall clock
(``time.time()``): the HLS output stamps PROGRAM-DATE-TIME with it.

* :meth:`Sink.refuse` is asked about each config packet (codec configuration) before any sink
  is fed it; a reason string from any sink refuses the whole publish: the encoder gets
  NetStream.Publish.Rejected with that reason (so it should name the codec), the socket closes
  and the broadcast ends.
* :meth:`Sink.packet` never blocks: a sink that works off the event loop hands the packet to
  its own bounded queue and drops (and counts) what it cannot take.
* :meth:`Sink.discontinuity`: the publisher reconnected within the grace; the media timeline
  starts again.
* :meth:`Sink.end`: the broadcast is over; the sink stops its threads. Sinks are ended in the
  reverse of their order, so the passthrough sink, which ends the HLS stream itself (every
  rendition gets EXT-X-ENDLIST), goes last.
* :meth:`Sink.health` answers JSON-able figures (finite numbers): see :func:`merge_health`.

A sink that raises is logged and dropped from its broadcast; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kitch.hls import LiveStream
from kitch.media import MediaPacket


@dataclass(frozen=True, slots=True)
class BroadcastInfo:
    """What a sink factory learns about the broadcast it may join."""

    channel: str
    channel_id: int
    broadcast_id: int
    #: The HLS stream the broadcast writes to (renditions are added with ``stream.rendition``).
    stream: LiveStream


class Sink(Protocol):
    name: str  # "hls", "ladder", "thumbnails"

    @property
    def wants_frames(self) -> bool:
        """Whether :meth:`packet` does anything, now, with a coded frame other than a video
        keyframe (audio frames included). While no sink after the passthrough one does, such
        frames go to the passthrough muxer natively (``kitch._ingest.FrameLane``) and the
        other sinks are not called for them."""
        ...

    def refuse(self, packet: MediaPacket) -> str | None:
        """Called for each config packet before it is fed: a reason string refuses the
        publish (NetStream.Publish.Rejected naming the codec), None accepts."""
        ...

    def packet(self, packet: MediaPacket, now: float) -> None:
        """Take one packet (config packets included); never blocks."""
        ...

    def discontinuity(self, now: float) -> None:
        """The publisher reconnected within the grace."""
        ...

    def end(self, now: float) -> None:
        """The broadcast is over (also stops the sink's threads)."""
        ...

    def health(self) -> dict[str, Any]:
        """JSON-able figures for the health API and /metrics."""
        ...


SinkFactory = Callable[[BroadcastInfo], Sink | None]


def ladder_off() -> dict[str, Any]:
    """The ``ladder`` health section of a broadcast without a ladder sink."""
    return {
        "state": "off",
        "reason": None,
        "decode_cpu_seconds": 0.0,
        "dropped_packets": 0,
        "decoder_restarts": 0,
    }


def merge_health(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine the sinks' :meth:`Sink.health` answers, in sink order: their ``renditions``
    lists are joined (the passthrough sink's ``source`` first), any other key (``ladder``) is
    taken from the sink that gives it. Starts from the ladder ``off`` and no renditions."""
    merged: dict[str, Any] = {"ladder": ladder_off(), "renditions": []}
    for part in parts:
        for key, value in part.items():
            if key == "renditions":
                merged["renditions"].extend(value)
            else:
                merged[key] = value
    return merged
