"""Invalid UTF-8: a feed declared UTF-8 with Latin-1 and stray bytes in it, and an article page
declared UTF-8 with invalid sequences.

Neither fails: the feed is decoded with a fallback encoding (feedparser flags it bozo, a benign
complaint), the page decodes with replacement characters where bytes are invalid, and the text
is stored (never bytes, never an encoding error).
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun
from tests.httpserver import LoopbackHTTPServer

FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bad \xff bytes'
    b"</title><item><title>D\xe9fense europ\xe9enne \xc3 sommet</title><guid>utf-1</guid>"
    b"<link>{base}/utf/1.html</link><description>R\xe9sum\xe9</description></item>"
    b"</channel></rss>"
)
PAGE = (
    b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Bad bytes</title></head>"
    b"<body><article><h1>Bad bytes</h1>"
    + b"<p>Alliance ministers met in Brussels \xff\xfe to discuss \xc3\x28 air defence. " * 20
    + b"</p></article></body></html>"
)


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add(
        "/utf/feed.xml",
        FEED.replace(b"{base}", server.base_url.encode()),
        content_type="application/rss+xml; charset=utf-8",
    )
    server.add("/utf/1.html", PAGE, content_type="text/html; charset=utf-8")
    return {"invalid-utf8": server.url("/utf/feed.xml")}


def test_invalid_utf8_is_decoded_not_fatal(hostile: HostileRun) -> None:
    status, reason, _, _, entries, bozo = hostile.feed("invalid-utf8")
    assert (status, reason, entries, bozo) == ("ok", None, 1, True)
    [(_, title, summary, status, reason, *_)] = hostile.articles("invalid-utf8")
    assert title.startswith("Défense européenne") and summary == "Résumé"
    assert (status, reason) == ("extracted", None)
    [(text,)] = hostile.rows("SELECT text FROM articles WHERE url LIKE '%/utf/1.html'")
    assert "Alliance ministers met in Brussels" in text
