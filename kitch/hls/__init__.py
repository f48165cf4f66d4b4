"""In-memory (LL-)HLS: segmenter, segment store, playlists, and the registry the server feeds.

No I/O here; the HTTP side is :mod:`kitch.api.hls`.
"""

from kitch.hls.registry import HlsRegistry, LiveStream, Rendition
from kitch.hls.settings import HlsSettings
from kitch.hls.store import Resume

__all__ = ["HlsRegistry", "HlsSettings", "LiveStream", "Rendition", "Resume"]
