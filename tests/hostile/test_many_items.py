"""A feed of 50,000 items (about 5 MB).

Only the first NEWSMON_MAX_FEED_ITEMS (200 here) are read: the document is cut before parsing,
so the rest costs neither parse time nor memory. The poll is ``ok`` with reason
``too_many_items`` and the count left out in ``error``; 200 articles are queued, no more.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, rss
from tests.httpserver import LoopbackHTTPServer

N = 50_000
LIMIT = 200


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    base = server.url("/many")
    items = "".join(
        f"<item><title>Item {i}</title><link>{base}/{i}</link><guid>tag:many,{i}</guid></item>"
        for i in range(N)
    )
    server.add("/many/feed.xml", rss(items), content_type="application/rss+xml")
    return {"many-items": server.url("/many/feed.xml")}  # the item pages answer 404


def test_only_the_first_items_are_read(hostile: HostileRun) -> None:
    status, reason, _, error, entries, _ = hostile.feed("many-items")
    assert (status, reason, entries) == ("ok", "too_many_items", LIMIT)
    assert error.startswith(f"{N - LIMIT} entries over the limit")
    assert hostile.rows(
        "SELECT count(*), min(i.guid), count(*) FILTER (WHERE a.extraction_reason = 'http_4xx') "
        "FROM feed_items i JOIN feeds f USING (feed_id) JOIN articles a USING (article_id) "
        "WHERE f.name = 'many-items'"
    ) == [(LIMIT, "tag:many,0", LIMIT)]
    assert hostile.rows("SELECT last_status, last_reason FROM feeds WHERE name = 'many-items'") == [
        ("ok", "too_many_items")
    ]
