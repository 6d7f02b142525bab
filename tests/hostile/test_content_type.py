"""Wrong or missing Content-Type: an RSS feed served as ``text/html``, one with no Content-Type,
an article page with none, and an HTML page served as ``application/octet-stream``.

Feeds are recognised by their content, not their label: both are read. A page with no
Content-Type is treated as HTML and extracted; a page labelled binary is not parsed as HTML
(``not_html``): newsmon does not sniff a declared binary type.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    untyped = item("Untyped page", server.url("/ctype/untyped.html"), "ct-1")
    binary = item("Binary-labelled page", server.url("/ctype/binary.html"), "ct-2")
    server.add("/ctype/as-html.xml", rss(untyped), content_type="text/html; charset=utf-8")
    server.add("/ctype/none.xml", rss(binary), content_type=None)
    server.add("/ctype/untyped.html", page("Untyped page"), content_type=None)
    server.add("/ctype/binary.html", page("Binary page"), content_type="application/octet-stream")
    return {
        "content-type-wrong": server.url("/ctype/as-html.xml"),
        "content-type-missing": server.url("/ctype/none.xml"),
    }


def test_feeds_are_read_whatever_their_label(hostile: HostileRun) -> None:
    assert hostile.feed("content-type-wrong")[:2] == ("ok", None)
    assert hostile.feed("content-type-missing")[:2] == ("ok", None)
    [(_, title, _, status, reason, *_)] = hostile.articles("content-type-wrong")
    assert (title, status, reason) == ("Untyped page", "extracted", None)
    [(_, title, _, status, reason, *_)] = hostile.articles("content-type-missing")
    assert (title, status, reason) == ("Binary-labelled page", "failed", "not_html")
