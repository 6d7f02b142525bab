"""Bodies over NEWSMON_HTTP_MAX_BYTES (8 MB here), with and without a Content-Length.

Declared: refused from the header, before any of the body is read. Chunked (no length): read up
to the limit and cut there. Feeds and pages alike: ``too_large``, never retried.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

HUGE = b"<rss version='2.0'><channel>" + b"<!-- padding -->" * 600_000  # 9.6 MB


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add("/big/declared.xml", HUGE, content_type="application/rss+xml")
    server.add("/big/chunked.xml", HUGE, content_type="application/rss+xml", content_length=False)
    links = [
        ("Huge declared page", "/big/declared.html"),
        ("Huge chunked page", "/big/chunked.html"),
    ]
    server.add(
        "/big/pages.xml",
        rss("".join(item(t, server.url(p), p) for t, p in links)),
        content_type="application/rss+xml",
    )
    server.add("/big/declared.html", b"<html>" + HUGE, content_type="text/html")
    server.add(
        "/big/chunked.html", b"<html>" + HUGE, content_type="text/html", content_length=False
    )
    return {
        "oversized-declared": server.url("/big/declared.xml"),
        "oversized-chunked": server.url("/big/chunked.xml"),
        "oversized-pages": server.url("/big/pages.xml"),
    }


def test_oversized_bodies_are_too_large(hostile: HostileRun) -> None:
    assert hostile.feed("oversized-declared")[:3] == ("failed", "too_large", 200)
    assert hostile.feed("oversized-chunked")[:3] == ("failed", "too_large", 200)
    got = {(r[1], r[3], r[4], r[5]) for r in hostile.articles("oversized-pages")}
    assert got == {
        ("Huge declared page", "failed", "too_large", 200),
        ("Huge chunked page", "failed", "too_large", 200),
    }
    # terminal: the second run did not fetch them again
    assert (
        hostile.server.count("/big/declared.html") == hostile.server.count("/big/chunked.html") == 1
    )
