"""Attacks on the wire itself, below HTTP's meaning: a header phase that never ends (one byte
every half second, the slowloris of responses), endless headers, framing garbage (a status line
that is not one, a chunk size that is not a number, two Content-Lengths that disagree, bytes that
are not HTTP at all), and encoding bombs beyond plain gzip (deflate, raw deflate, gzip twice,
endless gzip members). Each fails its feed alone, within the suite's 4-second deadline and the
8 MB limit, with a reason from the fixed set; the other feeds' runs go on."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Callable
from typing import Any

from tests.hostile.suite import HostileRun
from tests.httpserver import LoopbackHTTPServer

ZEROS = b"\0" * 20_000_000
_STOP = threading.Event()  # the server thread of a dripping response gives up with the suite


def _raw(data: bytes) -> Callable[[Any], None]:
    def handler(h: Any) -> None:
        h.wfile.write(data)
        h.wfile.flush()
        h.close_connection = True

    return handler


def _drip_headers(h: Any) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n")
    for _ in range(120):  # a minute of one header byte every half second, never the end
        if _STOP.wait(0.5):
            break
        try:
            h.wfile.write(b"X")
            h.wfile.flush()
        except OSError:
            break
    h.close_connection = True


def _endless_headers(h: Any) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    try:
        for n in range(2_000_000):  # 40 MB of headers if nobody stops reading
            h.wfile.write(b"X-Filler-%d: %s\r\n" % (n, b"y" * 8))
    except OSError:
        pass
    h.close_connection = True


def _encoded(body: bytes, encoding: str) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Encoding: {encoding}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


RAW_DEFLATE = zlib.compressobj(9, zlib.DEFLATED, -15)
RAW_BOMB = RAW_DEFLATE.compress(ZEROS) + RAW_DEFLATE.flush()
MEMBER = gzip.compress(b"\0" * 1_000_000, compresslevel=9)

CASES: dict[str, Callable[[Any], None]] = {
    "wire-drip-headers": _drip_headers,
    "wire-endless-headers": _endless_headers,
    "wire-bad-status": _raw(b"HTTP/1.1 two hundred OK\r\nContent-Length: 2\r\n\r\nok"),
    "wire-bad-chunk": _raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n<rss/>\r\n0\r\n\r\n"
    ),
    "wire-two-lengths": _raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 6\r\n"
        b"Content-Length: 60\r\n\r\n<rss/>"
    ),
    "wire-not-http": _raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50),
    "wire-deflate-bomb": _raw(_encoded(zlib.compress(ZEROS, 9), "deflate")),
    "wire-raw-deflate-bomb": _raw(_encoded(RAW_BOMB, "deflate")),
    "wire-gzip-twice": _raw(_encoded(gzip.compress(gzip.compress(ZEROS, 9), 9), "gzip, gzip")),
    "wire-endless-members": _raw(_encoded(MEMBER * 20, "gzip")),
}


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    _STOP.clear()
    for name, handler in CASES.items():
        server.add_handler(f"/wire/{name}.xml", handler)
    return {name: server.url(f"/wire/{name}.xml") for name in CASES}


def test_wire_attacks_fail_their_feed_alone_with_a_reason(hostile: HostileRun) -> None:
    _STOP.set()
    got = {name: hostile.feed(name)[:2] for name in CASES}
    assert all(status == "failed" for status, _ in got.values()), got
    assert {name: reason for name, (_, reason) in got.items()} == {
        "wire-drip-headers": "timeout",
        "wire-endless-headers": "connection",
        "wire-bad-status": "connection",
        "wire-bad-chunk": "connection",
        "wire-two-lengths": "connection",
        "wire-not-http": "connection",
        "wire-deflate-bomb": "too_large",
        "wire-raw-deflate-bomb": "too_large",
        "wire-gzip-twice": "too_large",
        "wire-endless-members": "too_large",
    }
