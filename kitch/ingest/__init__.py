"""The ingest: per-channel hub (publish decisions, live-session rules) and the sinks each
broadcast fans out to. Sans-IO; the asyncio glue is ``kitch/server/ingest.py``."""

from kitch.ingest.hub import Broadcast, Hub, Publisher, Refusal
from kitch.ingest.sinks import BroadcastInfo, Sink, SinkFactory

__all__ = ["Broadcast", "BroadcastInfo", "Hub", "Publisher", "Refusal", "Sink", "SinkFactory"]
