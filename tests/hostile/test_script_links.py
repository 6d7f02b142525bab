"""Item links that are ``javascript:`` or ``data:`` URLs (and a ``file:`` one).

They are never fetched nor stored as links: the entry is kept with its title and summary under
an ``urn:newsmon:entry:...`` key, ``link`` NULL, and its article row says ``failed`` /
``bad_url``.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

LINKS = {
    "Script link": "javascript:alert(document.cookie)",
    "Data link": "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "File link": "file:///etc/passwd",
}


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    items = "".join(
        item(t, link.replace("&", "&amp;"), t, f"{t} summary") for t, link in LINKS.items()
    )
    server.add("/links/feed.xml", rss(items), content_type="application/rss+xml")
    return {"script-links": server.url("/links/feed.xml")}


def test_script_and_data_links_are_refused(hostile: HostileRun) -> None:
    assert hostile.feed("script-links")[:2] == ("ok", None)
    rows = hostile.rows(
        "SELECT i.link, a.url, a.title, a.summary, a.extraction_status, a.extraction_reason, "
        "a.fetch_attempts FROM feed_items i JOIN feeds f USING (feed_id) "
        "JOIN articles a USING (article_id) WHERE f.name = 'script-links' ORDER BY a.title"
    )
    assert [(r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (None, t, f"{t} summary", "failed", "bad_url", 0) for t in sorted(LINKS)
    ]
    assert all(r[1].startswith("urn:newsmon:entry:") for r in rows)
    stored = " ".join(str(v) for r in hostile.rows("SELECT * FROM articles") for v in r)
    assert "javascript:" not in stored and "data:text/html" not in stored
