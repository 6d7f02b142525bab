"""Truncated responses: a feed and a page whose server announces a Content-Length and closes
the connection half-way, and a feed whose XML simply stops mid-item (a complete HTTP response).

A cut connection is ``connection`` (transient: the page is fetched again by the second run, and
cut again). Cut XML is read as far as it goes: the complete items are kept, the feed is flagged
bozo.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    whole = [item(f"Cut item {n}", server.url(f"/cut/{n}.html"), f"cut-{n}") for n in range(3)]
    for n in range(3):
        server.add(f"/cut/{n}.html", page(f"Cut item {n}"), content_type="text/html")
    body = rss("".join(whole))
    server.add(
        "/cut/http.xml", body, content_type="application/rss+xml", truncate_at=len(body) // 2
    )
    cut_xml = rss("".join(whole)).split(b"<item>")
    server.add(
        "/cut/xml.xml",
        b"<item>".join(cut_xml[:3]) + b"<item><title>Half an it",
        content_type="application/rss+xml",
    )
    server.add(
        "/cut/pages.xml",
        rss(item("Cut page", server.url("/cut/page.html"), "cp")),
        content_type="application/rss+xml",
    )
    server.add("/cut/page.html", page("Cut page"), content_type="text/html", truncate_at=100)
    return {
        "truncated-http": server.url("/cut/http.xml"),
        "truncated-xml": server.url("/cut/xml.xml"),
        "truncated-page": server.url("/cut/pages.xml"),
    }


def test_truncated_responses(hostile: HostileRun) -> None:
    assert hostile.feed("truncated-http")[:2] == ("failed", "connection")
    status, reason, _, _, entries, bozo = hostile.feed("truncated-xml")
    assert (status, reason, entries, bozo) == ("ok", None, 2, True)
    assert {r[1] for r in hostile.articles("truncated-xml")} == {"Cut item 0", "Cut item 1"}
    assert hostile.rows(
        "SELECT extraction_status, extraction_reason, fetch_attempts FROM articles "
        "WHERE title = 'Cut page'"
    ) == [("failed", "connection", 2)]
