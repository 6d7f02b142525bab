"""Article links to pages that are not HTML: a PDF, a PNG image (correctly labelled), and a PDF
labelled ``text/html``.

They are never handed to the HTML extractor: ``not_html`` (the magic bytes are checked, not only
the label), kept with the feed's title and summary, and not fetched again.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    pages = {
        "A PDF": ("/bin/report.pdf", PDF, "application/pdf"),
        "An image": ("/bin/photo.png", PNG, "image/png"),
        "A PDF posing as HTML": ("/bin/fake.html", PDF, "text/html"),
    }
    for path, body, ctype in pages.values():
        server.add(path, body, content_type=ctype)
    items = "".join(item(t, server.url(p[0]), t, f"{t} summary") for t, p in pages.items())
    server.add("/bin/feed.xml", rss(items), content_type="application/rss+xml")
    return {"not-html": server.url("/bin/feed.xml")}


def test_non_html_pages_are_not_html(hostile: HostileRun) -> None:
    got = {(r[1], r[2], r[3], r[4]) for r in hostile.articles("not-html")}
    assert got == {
        (t, f"{t} summary", "failed", "not_html")
        for t in ("A PDF", "An image", "A PDF posing as HTML")
    }
    assert hostile.server.count("/bin/report.pdf") == 1
