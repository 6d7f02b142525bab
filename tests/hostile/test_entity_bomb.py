"""XML entity expansion ("billion laughs"): nine levels of entities, 10^9 "lol"s if expanded.

newsmon hands feedparser bytes; expat refuses the undefined-in-strict-mode entities and
feedparser's loose parser does not expand internal entities, so nothing grows: the feed is read
(flagged bozo), its one entry stored with its title as the literal, short text.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

ENTITIES = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
BOMB = rss(item("Laughs &lol9;", "/bomb/a.html", "bomb-1", "&lol9;"), title="Bomb &lol9;").replace(
    b"<rss", f'<!DOCTYPE rss [<!ENTITY lol0 "lol">{ENTITIES}]>\n<rss'.encode(), 1
)


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add("/bomb/feed.xml", BOMB, content_type="application/rss+xml")
    server.add("/bomb/a.html", b"<html><body><p>tiny</p></body></html>", content_type="text/html")
    return {"entity-bomb": server.url("/bomb/feed.xml")}


def test_entities_are_not_expanded(hostile: HostileRun) -> None:
    status, reason, _, _, entries, bozo = hostile.feed("entity-bomb")
    assert (status, reason, entries, bozo) == ("ok", None, 1, True)
    [(title, summary)] = hostile.rows(
        "SELECT i.title, i.summary FROM feed_items i JOIN feeds f USING (feed_id) "
        "WHERE f.name = 'entity-bomb'"
    )
    assert len(title) < 100 and "lollol" not in title
    assert summary is None or len(summary) < 100
    assert hostile.rows("SELECT max(length(title)) < 1001 FROM feed_items") == [(True,)]
