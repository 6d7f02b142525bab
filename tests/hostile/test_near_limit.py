"""Many pages just under the size limit at once: eight article pages of 7.9 MB (the suite's limit
is 8 MB) in one feed, so in one batch. Each is legal; together they would hold 63 MB, and at the
default limits (10 MB, batches of 200) a batch of them would hold 2 GB. A batch keeps at most
``NEWSMON_HTTP_BATCH_MAX_BYTES`` of bodies (40 MB here): the pages past it are ``deferred``,
dropped unread and fetched by the next run, without using up an attempt. Nothing is lost.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

PAGES = 8
SIZE = 7_900_000


def _near_limit(title: str) -> bytes:
    body = page(title)
    head, tail = body.split(b"</article>", 1)
    padding = b"<!--" + b" padding" * ((SIZE - len(body) - 7) // 8) + b"-->"
    return head + b"</article>" + padding + tail


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    titles = [f"Near limit report {n}" for n in range(PAGES)]
    links = [(t, f"/near/{n}.html") for n, t in enumerate(titles)]
    for title, path in links:
        server.add(path, _near_limit(title), content_type="text/html")
    server.add(
        "/near/feed.xml",
        rss("".join(item(t, server.url(p), p) for t, p in links)),
        content_type="application/rss+xml",
    )
    return {"near-limit": server.url("/near/feed.xml")}


def test_pages_past_the_batch_budget_wait_for_the_next_run(hostile: HostileRun) -> None:
    assert SIZE - 16 < len(_near_limit(f"Near limit report {PAGES - 1}")) < 8_000_000
    articles = hostile.articles("near-limit")
    assert len(articles) == PAGES
    assert {a[3] for a in articles} == {"extracted"}, articles  # every page, in the end
    [(second_run,)] = hostile.rows("SELECT max(started_at) FROM runs")
    [(deferred, attempts)] = hostile.rows(
        "SELECT count(*) FILTER (WHERE a.fetched_at >= ?), max(a.fetch_attempts) "
        "FROM articles a JOIN feeds f USING (feed_id) WHERE f.name = 'near-limit'",
        [second_run],
    )
    assert 1 <= deferred <= PAGES - 4, deferred  # past 40 MB in the first run: the second's
    assert attempts == 1  # being deferred is not an attempt
