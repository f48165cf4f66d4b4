"""Ingest statistics now live in :mod:`kitch.ingest.stats`; these names are kept for imports."""

from kitch.ingest.stats import MAX_DIMENSION, MAX_FRAMERATE, IngestStats, peer_number

__all__ = ["MAX_DIMENSION", "MAX_FRAMERATE", "IngestStats", "peer_number"]
