"""The per-feed item limit, dodged by a change of case: a malformed feed (so feedparser falls
back to its loose parser, which folds tag names) of 600 ``<ITEM>`` elements. The byte-level cut
(``NEWSMON_MAX_FEED_ITEMS``, 200 in this suite) counted none of them, so the parser read all
600 before the later cap; tests/extractors/test_feeds.py checks the cut itself, this the run."""

from __future__ import annotations

from tests.hostile.suite import HostileRun, page
from tests.httpserver import LoopbackHTTPServer

ITEMS = 600


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    link = server.url("/case/a.html")  # one article behind every item: the count is the point
    server.add("/case/a.html", page("Shouted article"), content_type="text/html")
    items = "".join(
        f"<ITEM><TITLE>Shouted item {n}</TITLE><LINK>{link}</LINK><GUID>case-{n}</GUID></ITEM>"
        for n in range(ITEMS)
    )
    body = f'<?xml version="1.0"?><RSS version="2.0"><CHANNEL><TITLE>Loud</TITLE>{items}&bogus;'
    server.add("/case/feed.xml", body.encode(), content_type="application/rss+xml")
    return {"item-case": server.url("/case/feed.xml")}


def test_the_item_limit_holds_in_any_case(hostile: HostileRun) -> None:
    status, _reason, _http, _error, seen, _bozo = hostile.feed("item-case")
    assert status == "ok"
    assert seen == 200
    stored = hostile.rows(
        "SELECT count(*) FROM feed_items i JOIN feeds f USING (feed_id) WHERE f.name = 'item-case'"
    )
    assert stored == [(200,)]
