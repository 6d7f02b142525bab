"""A title of 1 MB (and a summary of 2 MB) in an otherwise normal feed item.

Titles are capped at 1,000 characters and summaries at 20,000 (``newsmon.extractors.feeds``), before
anything is stored or scored; the article is fetched and extracted as usual.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

TITLE = "Huge " + "title " * 175_000  # about 1 MB
SUMMARY = "summary " * 250_000  # 2 MB


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    assert len(TITLE) > 1_000_000
    server.add(
        "/huge/feed.xml",
        rss(item(TITLE, server.url("/huge/1.html"), "huge-1", SUMMARY)),
        content_type="application/rss+xml",
    )
    server.add("/huge/1.html", page("Huge title article"), content_type="text/html")
    return {"huge-title": server.url("/huge/feed.xml")}


def test_huge_title_is_capped(hostile: HostileRun) -> None:
    assert hostile.feed("huge-title")[:2] == ("ok", None)
    [(_, title, summary, status, *_)] = hostile.articles("huge-title")
    assert title.startswith("Huge title title") and len(title) <= 1_000
    assert len(summary) <= 20_000 and status == "extracted"
    assert hostile.rows(
        "SELECT length(i.title) <= 1000, length(i.summary) <= 20000 FROM feed_items i "
        "JOIN feeds f USING (feed_id) WHERE f.name = 'huge-title'"
    ) == [(True, True)]
