"""Answers an HTTP listener writes itself, before any application sees the request: the main
port's guard (:mod:`kitch.server.http`) and the HLS workers (:mod:`kitch.server.hls_worker`),
which must not import uvicorn for them."""

#: What a connection past the connection cap is told before it is closed.
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n\r\n"
    b"too many connections\n"
)
#: What a request whose head is over the size cap is told before the connection is closed.
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 30\r\n"
    b"connection: close\r\n\r\n"
    b"request headers are too large\n"
)
