"""Text that makes parsers work in quadratic time: a feed summary of 100,000 unclosed ``<!--``
(400 KB; Python's html.parser rescanned the rest at each one: 100 s), one of ``<a`` runs (more
than five minutes), and an article page of 200,000 tiny inline elements in one paragraph
(1.6 MB; trafilatura's time grows with their square: over four minutes of a worker). Each now
costs a fraction of a second: summaries are defused in one linear pass, the page is
refused as ``too_large`` past 30,000 elements (real pages have a few thousand), keeping the
feed's title and summary like any failed page."""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    tiny = (
        "<!doctype html><html><head><title>Tiny</title></head><body><article><h1>Tiny</h1><p>"
        + "<b>a</b>" * 200_000
        + "</p></article></body></html>"
    )
    server.add("/patho/tiny.html", tiny.encode(), content_type="text/html")
    server.add("/patho/fine.html", page("Fine article"), content_type="text/html")
    server.add("/patho/open.html", page("Open tags"), content_type="text/html")
    items = (
        item("Tiny elements", server.url("/patho/tiny.html"), "patho-tiny", summary="Tiny summary")
        + item(
            "Fine article",
            server.url("/patho/fine.html"),
            "patho-fine",
            summary="Before " + "&lt;!--" * 100_000,
        )
        + item(
            "Open tags",
            server.url("/patho/open.html"),
            "patho-open",
            summary="After " + "&lt;a" * 150_000,
        )
    )
    server.add("/patho/feed.xml", rss(items), content_type="application/rss+xml")
    return {"pathological": server.url("/patho/feed.xml")}


def test_quadratic_text_costs_linear_time(hostile: HostileRun) -> None:
    assert hostile.feed("pathological")[0] == "ok"
    got = {r[0].rsplit("/", 1)[1]: r for r in hostile.articles("pathological")}
    tiny, fine = got["tiny.html"], got["fine.html"]
    assert (tiny[1], tiny[2], tiny[3], tiny[4]) == (
        "Tiny elements",
        "Tiny summary",
        "failed",
        "too_large",
    )
    assert fine[3] == "extracted"
    assert fine[2] == "Before"  # the unclosed comments are dropped, not parsed for minutes
    assert got["open.html"][2].startswith("After < a< a< a")  # shown as text, not as a tag
