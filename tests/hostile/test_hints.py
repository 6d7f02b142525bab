"""A feed's own word about when to come back, taken to extremes: ``Cache-Control: max-age`` and
``Retry-After`` of 400 digits (a float overflows to infinity, a date overflows), a Retry-After
in the year 9999 and a TTL of a year. Each used to overflow the schedule (the run stopped) or
park the feed for good; each is now honoured up to a day."""

from __future__ import annotations

from datetime import timedelta

from tests.hostile.suite import HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

HUGE = "9" * 400


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.add("/hints/a.html", page("Hinted article"), content_type="text/html")
    body = rss(item("Hinted article", server.url("/hints/a.html"), "hint-a"))
    server.add(
        "/hints/max-age.xml",
        body,
        content_type="application/rss+xml",
        headers={"Cache-Control": f"public, max-age={HUGE}"},
    )
    server.add(
        "/hints/ttl.xml",
        rss(
            item("Hinted article", server.url("/hints/a.html"), "hint-a"), extra="<ttl>525600</ttl>"
        ),
        content_type="application/rss+xml",
    )
    server.add("/hints/retry.xml", b"busy", status=503, headers={"Retry-After": HUGE})
    server.add(
        "/hints/retry-date.xml",
        b"busy",
        status=503,
        headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    )
    return {
        f"hint-{name}": server.url(f"/hints/{name}.xml")
        for name in ("max-age", "ttl", "retry", "retry-date")
    }


def test_extreme_hints_are_honoured_up_to_a_day(hostile: HostileRun) -> None:
    assert hostile.feed("hint-max-age")[0] == "ok"
    assert hostile.feed("hint-ttl")[0] == "ok"
    assert hostile.feed("hint-retry")[:3] == ("failed", "http_5xx", 503)
    assert hostile.feed("hint-retry-date")[:3] == ("failed", "http_5xx", 503)
    rows = hostile.rows(
        "SELECT name, schedule_reason, next_poll_at - last_polled_at FROM feeds "
        "WHERE name LIKE 'hint-%' ORDER BY name"
    )
    assert [(name, why) for name, why, _ in rows] == [
        ("hint-max-age", "max-age"),
        ("hint-retry", "retry-after"),
        ("hint-retry-date", "retry-after"),
        ("hint-ttl", "ttl"),
    ]
    for name, _, wait in rows:  # a day, with the schedule's 10 % jitter
        assert timedelta(hours=21) <= wait <= timedelta(hours=26.5), (name, wait)
