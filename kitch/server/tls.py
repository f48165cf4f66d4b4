"""TLS for RTMPS over memory buffers (the standard library's ``SSLObject`` + ``MemoryBIO``).

The RTMP listener accepts RTMPS connections as plain TCP and runs TLS itself, so a connection
counts against the connection caps and the handshake timeout from the moment it is accepted,
not from the end of its TLS handshake (which is when an asyncio ``ssl=`` server would first
tell the protocol about it).
"""

from __future__ import annotations

import ssl

#: Largest plaintext read out of the TLS layer at once.
READ_SIZE = 256 * 1024


class TlsLayer:
    """Server side of one TLS connection: ciphertext in, plaintext out, and back.

    ``receive`` takes bytes from the socket and returns the plaintext they complete (empty
    during the handshake); ``encrypt`` queues plaintext to send; ``outgoing`` returns the
    ciphertext to write to the socket (handshake messages included). TLS errors raise
    :class:`ssl.SSLError`.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        self.handshake_done = False
        #: The peer sent its close_notify.
        self.closed = False

    def receive(self, data: bytes) -> bytes:
        self._in.write(data)
        if not self.handshake_done:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            self.handshake_done = True
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed = True
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def encrypt(self, data: bytes) -> None:
        self._tls.write(data)

    def close_notify(self) -> bool:
        """Queue our close_notify (after a completed handshake); True when there is one."""
        if not self.handshake_done or self.closed:
            return False
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent; the peer's close_notify is not awaited
        except ssl.SSLError:
            return False
        return True

    def outgoing(self) -> bytes:
        return self._out.read()
