"""Audio for the ladder: encoded once and shared by every rung.

An AAC source is passed on as it is (the same packets go to every rendition). Any other audio
(Opus, MP3) is decoded and re-encoded to AAC-LC once, with timestamps counted in samples from the
first packet's millisecond stamp, so they never drift from the rounding of RTMP stamps.
"""

from __future__ import annotations

import fractions

import av
from av.audio.fifo import AudioFifo
from av.audio.resampler import AudioResampler

from kitch.media import MediaPacket
from kitch.transcode.ladder import MS, LadderError

AAC_RATE = 48_000
AAC_FRAME = 1024
AAC_KBPS = 128
_DECODERS = {"opus": "libopus", "mp3": "mp3"}


class AudioToAac:
    """Decodes one non-AAC audio source and encodes it to stereo AAC-LC at 48 kHz."""

    def __init__(self, config: MediaPacket, kbps: int = AAC_KBPS) -> None:
        name = _DECODERS.get(config.codec)
        if name is None:
            raise LadderError(f"cannot re-encode {config.codec} audio")
        try:
            dec = av.CodecContext.create(name, "r")
            enc = av.CodecContext.create("aac", "w")
        except av.FFmpegError as exc:
            raise LadderError(f"audio codec unavailable: {exc}") from None
        assert isinstance(dec, av.AudioCodecContext) and isinstance(enc, av.AudioCodecContext)
        if config.data:
            dec.extradata = bytes(config.data)
        self.dec = dec
        enc.sample_rate = AAC_RATE
        enc.layout = "stereo"
        enc.format = "fltp"
        enc.bit_rate = kbps * 1000
        enc.time_base = fractions.Fraction(1, AAC_RATE)
        enc.flags |= av.codec.context.Flags.global_header
        enc.open()
        self.enc = enc
        self.resampler = AudioResampler(format="fltp", layout="stereo", rate=AAC_RATE)
        self.fifo = AudioFifo()
        self.config = bytes(enc.extradata or b"")
        self._start_ms: int | None = None
        self._samples = 0  # samples handed to the encoder
        self._config_sent = False

    def feed(self, packet: MediaPacket | None) -> list[MediaPacket]:
        """One source packet in (``None`` flushes), AAC packets out (the config record first)."""
        try:
            if packet is None:
                frames = self.dec.decode(None)
            else:
                if self._start_ms is None:
                    self._start_ms = packet.dts
                frames = self.dec.decode(av.Packet(packet.data))  # type: ignore[arg-type]
            for frame in frames:
                frame.pts = None
                for resampled in self.resampler.resample(frame):
                    self.fifo.write(resampled)
            out: list[MediaPacket] = []
            while self.fifo.samples >= AAC_FRAME or (packet is None and self.fifo.samples):
                chunk = self.fifo.read(min(AAC_FRAME, self.fifo.samples))
                out += self._encode(chunk)
            if packet is None:
                out += self._encode(None)
            return out
        except av.FFmpegError as exc:
            raise LadderError(f"audio transcode failed: {exc}") from None

    def _encode(self, frame: av.AudioFrame | None) -> list[MediaPacket]:
        if frame is not None:
            frame.pts = self._samples
            frame.time_base = self.enc.time_base
            self._samples += frame.samples
        out: list[MediaPacket] = []
        for p in self.enc.encode(frame):
            ms = (self._start_ms or 0) + int((p.pts or 0) * 1000 // AAC_RATE)
            if not self._config_sent:
                self._config_sent = True
                out.append(MediaPacket("audio", "aac", ms, ms, self.config, False, True))
            out.append(MediaPacket("audio", "aac", ms, ms, bytes(p)))
        return out


__all__ = ["AAC_RATE", "MS", "AudioToAac"]
