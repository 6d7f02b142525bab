"""Dates: invalid (``not a date``, 31 February), missing, and far in the future (year 2999).

None of them is stored as a date: ``published_at`` is NULL (the pages carry no date either).
A date more than two days ahead is treated as wrong, not as news from the future, so it cannot
pin an item to the top of "latest" queries.
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

DATES = {
    "Invalid date": "<pubDate>not a date</pubDate>",
    "Impossible date": "<pubDate>Mon, 31 Feb 2025 10:00:00 GMT</pubDate>",
    "Missing date": "",
    "Future date": "<pubDate>Tue, 01 Jan 2999 00:00:00 GMT</pubDate>",
    "Good date": "<pubDate>Mon, 16 Nov 2026 08:00:00 GMT</pubDate>",
}


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    items = []
    for n, (title, extra) in enumerate(DATES.items()):
        items.append(item(title, server.url(f"/dates/{n}.html"), f"date-{n}", extra=extra))
        server.add(f"/dates/{n}.html", page(title), content_type="text/html")
    server.add("/dates/feed.xml", rss("".join(items)), content_type="application/rss+xml")
    return {"dates": server.url("/dates/feed.xml")}


def test_bad_dates_are_null(hostile: HostileRun) -> None:
    assert hostile.feed("dates")[:2] == ("ok", None)
    got = {
        r[1]: (r[3], None if r[6] is None else r[6].date().isoformat())
        for r in hostile.articles("dates")
    }
    assert got == {
        "Invalid date": ("extracted", None),
        "Impossible date": ("extracted", None),
        "Missing date": ("extracted", None),
        "Future date": ("extracted", None),
        "Good date": ("extracted", "2026-11-16"),
    }
