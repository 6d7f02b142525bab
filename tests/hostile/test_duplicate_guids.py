"""Duplicate GUIDs: one feed lists the same ``<guid>`` three times (with different links), and
another feed reuses one of them.

Within a feed the first wins and the repeats are dropped; GUIDs are per feed, so the other feed's
entry is its own item. Each distinct link becomes exactly one article.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    links = [server.url(f"/dup/{n}.html") for n in range(3)]
    for n in range(3):
        server.add(f"/dup/{n}.html", page(f"Duplicate {n}"), content_type="text/html")
    first = "".join(item(f"Duplicate {n}", links[n], "tag:dup,2026:same") for n in range(3))
    server.add(
        "/dup/feed.xml",
        rss(first + item("Other", links[2], "tag:dup,2026:other")),
        content_type="application/rss+xml",
    )
    server.add(
        "/dup/feed2.xml",
        rss(item("Duplicate 1", links[1], "tag:dup,2026:same")),
        content_type="application/rss+xml",
    )
    return {
        "duplicate-guids": server.url("/dup/feed.xml"),
        "duplicate-guids-2": server.url("/dup/feed2.xml"),
    }


def test_duplicate_guids_are_stored_once(hostile: HostileRun) -> None:
    assert hostile.feed("duplicate-guids")[:2] == ("ok", None)
    assert (
        hostile.feed("duplicate-guids")[4] == 2
    )  # entries kept: the first "tag:dup,2026:same", "other"
    items = hostile.rows(
        "SELECT f.name, i.guid, i.link FROM feed_items i JOIN feeds f USING (feed_id) "
        "WHERE f.name LIKE 'duplicate-guids%' ORDER BY f.name, i.guid"
    )
    base = hostile.server.base_url
    assert items == [
        ("duplicate-guids", "tag:dup,2026:other", f"{base}/dup/2.html"),
        ("duplicate-guids", "tag:dup,2026:same", f"{base}/dup/0.html"),
        ("duplicate-guids-2", "tag:dup,2026:same", f"{base}/dup/1.html"),
    ]
    assert hostile.rows(
        "SELECT count(*), count(DISTINCT canonical_url) FROM articles WHERE url LIKE '%/dup/%'"
    ) == [(3, 3)]
