"""Redirects: a loop (feed and page), and redirects to another scheme (``file:``, ``ftp:``).

A loop is cut after NEWSMON_HTTP_MAX_REDIRECTS hops (``too_many_redirects``); a redirect to
anything but http(s) is never followed (``bad_url``): no local file is ever read because a
server said so.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.redirect("/loop/a", "/loop/b")
    server.redirect("/loop/b", "/loop/a")
    server.redirect("/scheme/file", "file:///etc/passwd")
    server.redirect("/scheme/ftp", "ftp://ftp.example.org/feed.xml", status=301)
    pages = [
        ("Looping page", "/loop/a"),
        ("File page", "/scheme/file"),
        ("FTP page", "/scheme/ftp"),
    ]
    server.add(
        "/redirect/pages.xml",
        rss("".join(item(t, server.url(p), t) for t, p in pages)),
        content_type="application/rss+xml",
    )
    return {
        "redirect-loop": server.url("/loop/a"),
        "redirect-file": server.url("/scheme/file"),
        "redirect-ftp": server.url("/scheme/ftp"),
        "redirect-pages": server.url("/redirect/pages.xml"),
    }


def test_redirect_loops_and_other_schemes(hostile: HostileRun) -> None:
    assert hostile.feed("redirect-loop")[:2] == ("failed", "too_many_redirects")
    assert hostile.feed("redirect-file")[:3] == ("failed", "bad_url", 302)
    assert hostile.feed("redirect-ftp")[:3] == ("failed", "bad_url", 301)
    got = {(r[1], r[3], r[4]) for r in hostile.articles("redirect-pages")}
    assert got == {
        ("Looping page", "failed", "too_many_redirects"),
        ("File page", "failed", "bad_url"),
        ("FTP page", "failed", "bad_url"),
    }
