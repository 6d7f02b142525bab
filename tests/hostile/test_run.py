"""The run as a whole: a well-behaved control feed next to every hostile case, and the totals.

Both runs complete; the control feed's articles are all extracted (the hostile feeds cost only
themselves); every feed item has exactly one article (items lost: 0), no article is stored
twice (duplicates: 0), and the second run adds no article and fetches no good page again.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

CONTROL = [f"Control article {n}" for n in range(5)]


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    items = "".join(
        item(t, server.url(f"/control/{n}.html"), f"c-{n}") for n, t in enumerate(CONTROL)
    )
    for n, title in enumerate(CONTROL):
        server.add(f"/control/{n}.html", page(title), content_type="text/html")
    server.add(
        "/control/feed.xml", rss(items), content_type="application/rss+xml", etag='"control-v1"'
    )
    return {"control": server.url("/control/feed.xml")}


def test_the_control_feed_is_unaffected(hostile: HostileRun) -> None:
    assert hostile.feed("control")[:2] == ("ok", None)
    got = {r[1]: (r[3], r[4]) for r in hostile.articles("control")}
    assert got == {t: ("extracted", None) for t in CONTROL}
    assert [hostile.server.count(f"/control/{n}.html") for n in range(5)] == [1] * 5


def test_runs_complete_and_nothing_is_lost_or_duplicated(hostile: HostileRun) -> None:
    assert hostile.rows("SELECT count(*), count(finished_at) FROM runs") == [(2, 2)]
    # items lost: feed items without an article
    assert hostile.rows(
        "SELECT count(*) FROM feed_items i WHERE NOT EXISTS "
        "(SELECT 1 FROM articles a WHERE a.article_id = i.article_id)"
    ) == [(0,)]
    # duplicates: the same canonical URL twice, or a key twice
    assert hostile.rows(
        "SELECT count(*) - count(DISTINCT canonical_url), count(*) - count(DISTINCT article_id) "
        "FROM articles"
    ) == [(0, 0)]
    first, second = hostile.summaries
    assert second.articles_new == 0
    assert (
        first.articles_new
        == hostile.rows("SELECT count(*) FROM articles WHERE NOT is_baseline")[0][0]
    )
    assert {f.name for f in first.feeds} == set(hostile.feeds)
    assert [f.status for f in second.feeds if f.name == "control"] == ["not_modified"]
