# cython: language_level=3
"""The passthrough ingest's per-frame path, native: a coded frame from the RTMP session's media
fast path (:class:`kitch._rtmp.MediaFastPath`) into the HLS ``source`` segmenter, without the
Python layers between them.

For a frame of a live broadcast whose only sink that wants every frame is the passthrough one,
:class:`FrameLane` does what ``Hub.feed`` -> ``PassthroughSink.packet`` -> ``LiveStream.feed``
-> ``Rendition.feed`` -> ``Segmenter.feed`` would do, in the common case only: the segmenter's
per-frame step (:func:`kitch._mux.video_step` / ``audio_step``) takes the frame, the broadcast's
clock and stats and the stream's counters are updated, and Python is called once the frame fills
its part (the stats' per-packet bookkeeping, ``IngestStats.on_packet``, is done here too).
Anything else (configurations, keyframes, a broadcast that ended or changed hands, a
sink that wants the frame, a segmenter that is starting, restarting or moving its clock) is
declined and goes the Python way. Import it through :mod:`kitch.twins`; the twin
(:mod:`kitch._ingest_py`) declines every frame, so the Python path is its oracle.
"""

__all__ = ["FrameLane"]


cdef _count(stats, packet, bint video):
    """``IngestStats.on_packet`` for a coded frame (kitch/ingest/stats.py), natively."""
    cdef object t = packet.dts
    cdef object other
    sizes = stats._bytes
    if video:
        stats.video_codec = packet.codec
    else:
        stats.audio_codec = packet.codec
    stats.packets_total += 1
    sizes.append((t, len(packet.data)))
    if video:
        stats._video_dts.append(t)
        stats._last_video = t
        if packet.keyframe:
            stats._keyframes.append(t)
        other = stats._last_audio
        if other is not None:
            stats._drift.append(other - t)
    else:
        stats._last_audio = t
        other = stats._last_video
        if other is not None:
            stats._drift.append(t - other)
    horizon = t - stats.window_ms
    while sizes and sizes[0][0] < horizon:
        sizes.popleft()
    video_dts = stats._video_dts
    while video_dts and video_dts[0] < horizon:
        video_dts.popleft()


cdef class FrameLane:
    """One publisher's frames into its broadcast's passthrough segmenter.

    ``broadcast`` is the hub's broadcast, fed while ``conn`` is its publisher; ``sink`` its
    passthrough sink (the first); ``clock`` and ``wall`` the hub's clocks; ``failed(broadcast,
    sink, what, wall)`` the hub's handler of a sink that raised; ``steps`` the segmenter's
    ``(video_step, video_record, audio_step, audio_record)``. Call it with a packet: True when
    it took the packet, False when the caller must hand it to the hub. ``taken`` counts the
    packets it took.
    """

    cdef object broadcast, conn, sink, clock, wall, failed
    cdef object stream, rendition, segmenter
    cdef object video_step, video_record, audio_step, audio_record
    cdef readonly Py_ssize_t taken

    def __init__(self, broadcast, conn, sink, clock, wall, failed, steps):
        self.broadcast = broadcast
        self.conn = conn
        self.sink = sink
        self.clock = clock
        self.wall = wall
        self.failed = failed
        self.stream = sink.stream
        self.rendition = self.stream.renditions["source"]
        self.segmenter = self.rendition.segmenter
        self.video_step, self.video_record, self.audio_step, self.audio_record = steps
        self.taken = 0

    def __call__(self, packet):
        cdef object b = self.broadcast
        cdef object seg = self.segmenter
        cdef list sinks
        cdef Py_ssize_t i
        cdef int step
        cdef bint video
        if b.publisher is not self.conn or b.ended or packet.is_config:
            return False
        sinks = b.sinks
        if not sinks or sinks[0] is not self.sink:
            return False
        for i in range(1, len(sinks)):
            if getattr(sinks[i], "wants_frames", True):
                return False
        if (
            self.rendition.store.ended or seg._anchor_until is not None or not seg._started
            or seg._restart_pending
        ):
            return False
        video = packet.kind == "video"
        if video:
            if packet.codec != seg._vcodec or seg._vcfg is None:
                return False
        elif packet.codec != seg._acodec or seg._acfg is None or not seg._has_audio:
            return False
        wall = self.wall()
        try:
            if video:
                step = self.video_step(seg, packet, self.video_record)
            else:
                step = self.audio_step(seg, packet, self.audio_record)
        except Exception:  # as Hub.feed: the packet was counted before its sink failed
            self._book(b, packet, video, wall)
            self.failed(b, self.sink, "packet", wall)
            self.taken += 1
            return True
        if not step:
            return False
        self._book(b, packet, video, wall)
        if step == 2:
            try:
                self.rendition.part_filled(wall)
            except Exception:
                self.failed(b, self.sink, "packet", wall)
        self.taken += 1
        return True

    cdef _book(self, b, packet, bint video, wall):
        """What Hub.feed and LiveStream.feed note for a packet before the segmenter runs."""
        b.last_media = self.clock()
        _count(b.stats, packet, video)
        stream = self.stream
        if stream.first_frame_at is None:
            stream.first_frame_at = wall
        stream.bytes_in += len(packet.data)
