"""A server that sends one byte every half second: every read is well within the 3 s read timeout
(even on a busy machine), so only the total deadline (NEWSMON_HTTP_DEADLINE, 4 s here) can stop
it.

Both a feed and an article page drip. Each is cut at the deadline (``timeout``, "deadline ...
exceeded"); the run goes on. Timeouts are transient, so the page is fetched again by the second
run (and cut again): ``fetch_attempts`` 2.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add("/drip/feed.xml", rss(item("x", "/x", "x")), content_type="text/xml", drip_s=0.5)
    server.add(
        "/drip/pages.xml",
        rss(item("Dripping page", server.url("/drip/page.html"), "d1")),
        content_type="application/rss+xml",
    )
    server.add("/drip/page.html", b"<html>" + b"x" * 200, content_type="text/html", drip_s=0.5)
    return {"drip-feed": server.url("/drip/feed.xml"), "drip-page": server.url("/drip/pages.xml")}


def test_the_total_deadline_holds(hostile: HostileRun) -> None:
    status, reason, _, error, _, _ = hostile.feed("drip-feed")
    assert (status, reason) == ("failed", "timeout") and "deadline" in error
    [(_, title, _, status, reason, _, _)] = hostile.articles("drip-page")
    assert (title, status, reason) == ("Dripping page", "failed", "timeout")
    assert hostile.rows(
        "SELECT fetch_attempts, extraction_error LIKE '%deadline%' FROM articles "
        "WHERE title = 'Dripping page'"
    ) == [(2, True)]
