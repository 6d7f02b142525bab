"""Gzip bombs: small bodies that inflate far past NEWSMON_HTTP_MAX_BYTES (8 MB here).

Three ways in: a feed with ``Content-Encoding: gzip`` (20 MB of zeros in 20 KB), a raw gzip file
served as the feed with no Content-Encoding (inflated by the feed parser, within the same limit),
and an article page with ``Content-Encoding: gzip``. Inflating stops after the limit:
``too_large``, and the memory it cost is bounded by the limit.
"""

from __future__ import annotations

import gzip

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

BOMB = gzip.compress(b"\0" * 20_000_000, compresslevel=9)


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    assert len(BOMB) < 50_000
    server.add(
        "/gz/encoded.xml",
        BOMB,
        content_type="application/rss+xml",
        headers={"Content-Encoding": "gzip"},
    )
    server.add("/gz/raw.xml.gz", BOMB, content_type="application/octet-stream")
    server.add(
        "/gz/pages.xml",
        rss(item("Bomb page", server.url("/gz/page.html"), "gz-1")),
        content_type="application/rss+xml",
    )
    server.add(
        "/gz/page.html", BOMB, content_type="text/html", headers={"Content-Encoding": "gzip"}
    )
    return {
        "gzip-bomb-encoded": server.url("/gz/encoded.xml"),
        "gzip-bomb-raw": server.url("/gz/raw.xml.gz"),
        "gzip-bomb-page": server.url("/gz/pages.xml"),
    }


def test_gzip_bombs_are_too_large(hostile: HostileRun) -> None:
    assert hostile.feed("gzip-bomb-encoded")[:2] == ("failed", "too_large")
    assert hostile.feed("gzip-bomb-raw")[:2] == ("failed", "too_large")
    assert hostile.feed("gzip-bomb-page")[:2] == ("ok", None)
    [(_, title, _, status, reason, http, _)] = hostile.articles("gzip-bomb-page")
    assert (title, status, reason, http) == ("Bomb page", "failed", "too_large", 200)
