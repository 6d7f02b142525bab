"""An HTML page served as the feed (with a feed-like ``.xml`` URL and an XML Content-Type), and
JSON that is not a JSON Feed.

Neither yields a feed or entries: the poll fails with ``not_a_feed``, the feed's error streak
grows, and nothing is queued.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, page
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add("/notfeed/feed.xml", page("Welcome to our site"), content_type="application/rss+xml")
    server.add(
        "/notfeed/api.json", b'{"status": "ok", "items": 3}', content_type="application/json"
    )
    return {
        "html-as-feed": server.url("/notfeed/feed.xml"),
        "json-not-feed": server.url("/notfeed/api.json"),
    }


def test_html_served_as_a_feed_is_not_a_feed(hostile: HostileRun) -> None:
    assert hostile.feed("html-as-feed")[:2] == ("failed", "not_a_feed")
    assert hostile.feed("json-not-feed")[:2] == ("failed", "not_a_feed")
    assert hostile.rows(
        "SELECT name, error_streak FROM feeds WHERE name IN ('html-as-feed', 'json-not-feed') "
        "ORDER BY name"
    ) == [("html-as-feed", 2), ("json-not-feed", 2)]
