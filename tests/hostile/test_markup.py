"""HTML and script inside titles and summaries: escaped markup in a plain-text RSS title, a
CDATA summary with ``<script>``, ``<style>``, an ``onerror`` image, and an Atom ``type="html"``
title.

Everything is stored as plain text: script and style elements dropped with their content, tags
stripped, entities unescaped. Nothing stored needs escaping to be shown safely.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, page
from tests.httpserver import LoopbackHTTPServer

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Markup</title>
<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Ministers &lt;b&gt;meet&lt;/b&gt;</title>
<link>{base}/markup/1.html</link><guid>markup-1</guid>
<description><![CDATA[<p>Summary <script>steal()</script><style>p{{}}</style>
<img src=x onerror="alert(2)"> with <a href="javascript:x()">a link</a> &amp; more</p>]]>
</description>
</item></channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Markup Atom</title><id>urn:markup</id><updated>2026-01-01T00:00:00Z</updated>
<entry><id>markup-2</id>
<title type="html">&lt;iframe src=x&gt;&lt;/iframe&gt;Summit &lt;i&gt;ends&lt;/i&gt;</title>
<link href="{base}/markup/2.html"/><updated>2026-01-01T00:00:00Z</updated>
<summary type="html">&lt;script&gt;evil()&lt;/script&gt;Plain &lt;em&gt;words&lt;/em&gt;
</summary></entry>
</feed>"""


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    base = server.base_url
    server.add("/markup/feed.rss", RSS.format(base=base), content_type="application/rss+xml")
    server.add("/markup/feed.atom", ATOM.format(base=base), content_type="application/atom+xml")
    server.add("/markup/1.html", page("Ministers meet"), content_type="text/html")
    server.add("/markup/2.html", page("Summit ends"), content_type="text/html")
    return {
        "markup-rss": server.url("/markup/feed.rss"),
        "markup-atom": server.url("/markup/feed.atom"),
    }


def test_markup_is_stored_as_plain_text(hostile: HostileRun) -> None:
    [(_, title, summary, status, *_)] = hostile.articles("markup-rss")
    assert title == "Ministers meet"
    assert summary == "Summary with a link & more"
    assert status == "extracted"
    [(_, title, summary, *_)] = hostile.articles("markup-atom")
    assert (title, summary) == ("Summit ends", "Plain words")
    for column in ("title", "summary", "text"):
        assert hostile.rows(
            f"SELECT count(*) FROM articles WHERE regexp_matches({column}, '<[a-zA-Z/!]')"
        ) == [(0,)], column
