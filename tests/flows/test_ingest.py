"""The real ingest flow (Prefect) against feeds and pages on a loopback HTTP server.

Two scenarios: the bundled sample (RSS 2.0, Atom, RSS 1.0; a windows-1252 page; a relative
link; the same article in two feeds) run twice, and a feed of misbehaving pages and feeds
(500, timeout, malformed feed, redirect, oversized body, not HTML) whose failures are recorded,
reported and retried.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from newsmon.extractors.fetch import FetchOptions
from newsmon.extractors.pipeline import ArticleCandidate, batches, interleave_by_host, poll_feeds
from newsmon.flows.ingest import RunSummary, ingest, load_config
from newsmon.warehouse import polls
from newsmon.warehouse.store import connect
from tests.helpers import rows
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT
from tests.sample import expected, serve_sample, write_feeds_toml

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]


def run(db: Path, feeds: Path) -> RunSummary:
    result = ingest(db=str(db), feeds_file=str(feeds))
    assert isinstance(result, RunSummary)
    return result


def test_sample_ingest_then_rerun_is_conditional_and_stores_nothing_new(
    http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    exp = expected()
    feeds = serve_sample(http_server)
    feeds_file = write_feeds_toml(tmp_path / "feeds.toml", feeds)
    db = tmp_path / "w.duckdb"

    first = run(db, feeds_file)

    assert [(f.name, f.status, f.entries, f.new) for f in first.feeds] == [
        ("defence-wire", "ok", 6, 6),
        ("europe-desk", "ok", 5, 5),
        ("security-brief", "ok", 3, 3),
    ]
    assert first.articles_new == exp["totals"]["distinct_articles"] == 13
    assert first.articles_failed == 0
    assert first.baseline_loaded == 3

    # exact article rows: one per distinct canonical URL, all extracted, titles and languages
    got = {
        r[0].rsplit("/", 1)[-1].removesuffix(".html"): r[1:]
        for r in rows(
            db,
            "SELECT canonical_url, title, language, extraction_status, is_baseline "
            "FROM articles WHERE NOT is_baseline",
        )
    }
    want = {
        slug: (a["title"], a["lang"], "extracted", False) for slug, a in exp["articles"].items()
    }
    assert got == want
    # the utm-tagged copy in the Atom feed is the same article: stored once, seen in two feeds
    assert rows(
        db,
        "SELECT count(*) FROM feed_items i JOIN articles a USING (article_id) "
        "WHERE a.canonical_url LIKE '%nato-ministers-eastern-flank-air-defence.html'",
    ) == [(2,)]
    assert rows(db, "SELECT count(*) FROM feed_items") == [(14,)]
    # relevance per the sample's labels; every article has a match row, relevant or not
    relevant = {
        r[0].rsplit("/", 1)[-1].removesuffix(".html")
        for r in rows(
            db,
            "SELECT a.canonical_url FROM articles a JOIN article_matches m USING (article_id) "
            "WHERE m.relevant AND m.topic = 'eu_nato_defence' AND NOT a.is_baseline",
        )
    }
    assert relevant == {s for s, a in exp["articles"].items() if a["relevant"]}
    assert rows(db, "SELECT count(*) FROM article_matches") == [(16,)]
    assert rows(db, "SELECT count(*) FROM articles WHERE is_baseline") == [(3,)]
    # the windows-1252 page decoded correctly
    assert rows(
        db,
        "SELECT count(*) FROM articles WHERE canonical_url LIKE '%baltic-cable%' "
        "AND text LIKE '%€%' AND title LIKE '%‘Baltic Sentry’%'",
    ) == [(1,)]
    pages = {f"/articles/{s}.html": http_server.count(f"/articles/{s}.html") for s in want}
    assert sorted(pages.values()) == [1] * 13

    second = run(db, feeds_file)

    assert [(f.status, f.new) for f in second.feeds] == [("not_modified", 0)] * 3
    assert second.articles_new == 0 and second.relevant == [] and second.baseline_loaded == 0
    for url in feeds.values():
        path = urlsplit(url).path
        req = http_server.requests(path)[-1]
        assert req.headers["if-none-match"].startswith('"')
        assert req.headers["if-modified-since"] == "Mon, 16 Nov 2026 08:00:00 GMT"
    assert {p: http_server.count(p) for p in pages} == pages  # no page fetched again
    assert rows(db, "SELECT count(*) FROM articles") == [(16,)]
    assert rows(
        db, "SELECT status, count(*) FROM feed_fetches GROUP BY status ORDER BY status"
    ) == [("not_modified", 3), ("ok", 3)]
    assert rows(db, "SELECT count(*), count(finished_at) FROM runs") == [(2, 2)]


def _rss(base: str, items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{base}{link}</link><guid>{link}</guid>"
        f"<description>{t} summary</description></item>"
        for t, link in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Edge</title>'
        f"<link>{base}/</link>{body}</channel></rss>"
    ).encode()


def test_bad_feeds_and_pages_are_recorded_reported_and_retried(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # short enough to keep the test quick, long enough that no answer meant to arrive times out
    # on a busy machine; the slow routes hold far longer (a server stop cuts the delay short)
    monkeypatch.setenv("NEWSMON_HTTP_TIMEOUT", "1.5")
    monkeypatch.setenv("NEWSMON_HTTP_DEADLINE", "3")
    monkeypatch.setenv("NEWSMON_HTTP_RETRIES", "1")
    monkeypatch.setenv("NEWSMON_HTTP_MAX_BYTES", "300000")
    monkeypatch.setenv("NEWSMON_WORKERS", "1")
    base = http_server.url("").rstrip("/")
    page = (ROOT / "config" / "sample" / "articles").joinpath(
        "germany-air-defence-procurement.html"
    )
    http_server.add(
        "/edge.xml",
        _rss(
            base,
            [
                ("Moved page", "/moved"),
                ("Server error page", "/p/500"),
                ("Slow page", "/p/slow"),
                ("Huge page", "/p/huge"),
                ("A PDF", "/p/doc.pdf"),
            ],
        ),
        content_type="application/rss+xml",
    )
    http_server.redirect("/moved", "/p/final.html", status=301)
    http_server.add("/p/final.html", page.read_bytes(), content_type="text/html; charset=utf-8")
    http_server.add("/p/500", status=500)
    http_server.add("/p/slow", b"<html>late</html>", content_type="text/html", delay_s=30)
    http_server.add("/p/huge", b"<html>" + b"x" * 400_000, content_type="text/html")
    http_server.add("/p/doc.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    http_server.add("/malformed.xml", b"<rss><channel><title>oops", content_type="text/xml")
    http_server.add("/html-not-feed.xml", b"<html><body>Hi</body></html>", content_type="text/html")
    http_server.add("/down.xml", status=503)
    http_server.add("/slow.xml", b"<rss/>", content_type="text/xml", delay_s=30)
    feeds_file = write_feeds_toml(
        tmp_path / "feeds.toml",
        {
            "edge": f"{base}/edge.xml",
            "malformed": f"{base}/malformed.xml",
            "html": f"{base}/html-not-feed.xml",
            "down": f"{base}/down.xml",
            "slow": f"{base}/slow.xml",
            "missing-file": str(tmp_path / "nope.xml"),
        },
    )
    db = tmp_path / "w.duckdb"

    first = run(db, feeds_file)

    assert [(f.name, f.status, f.reason, f.http_status) for f in first.feeds] == [
        ("edge", "ok", None, 200),
        ("malformed", "failed", "not_a_feed", 200),
        ("html", "failed", "not_a_feed", 200),
        ("down", "failed", "http_5xx", 503),
        ("slow", "failed", "timeout", None),
        ("missing-file", "failed", "file_error", None),
    ]
    assert http_server.count("/down.xml") == 2  # one retry for a transient failure
    got = {
        r[0].removeprefix(base): r[1:]
        for r in rows(
            db,
            "SELECT url, extraction_status, extraction_reason, http_status, fetch_attempts, "
            "final_url IS NOT NULL AND final_url LIKE '%/p/final.html', title, summary "
            "FROM articles WHERE NOT is_baseline",
        )
    }
    assert got == {
        "/moved": ("extracted", None, 200, 1, True, "Moved page", "Moved page summary"),
        "/p/500": (
            "failed",
            "http_5xx",
            500,
            1,
            False,
            "Server error page",
            "Server error page summary",
        ),
        "/p/slow": ("failed", "timeout", None, 1, False, "Slow page", "Slow page summary"),
        "/p/huge": ("failed", "too_large", 200, 1, False, "Huge page", "Huge page summary"),
        "/p/doc.pdf": ("failed", "not_html", 200, 1, False, "A PDF", "A PDF summary"),
    }
    assert first.articles_new == 5 and first.articles_failed == 4
    # per-feed state: error streaks and the last reason, for `newsmon status`
    assert rows(
        db, "SELECT name, last_status, last_reason, error_streak FROM feeds ORDER BY name"
    ) == [
        ("down", "failed", "http_5xx", 1),
        ("edge", "ok", None, 0),
        ("html", "failed", "not_a_feed", 1),
        ("malformed", "failed", "not_a_feed", 1),
        ("missing-file", "failed", "file_error", 1),
        ("slow", "failed", "timeout", 1),
    ]

    # The server recovers: the next run retries only the transient page failures.
    http_server.add("/p/500", page.read_bytes(), content_type="text/html")
    second = run(db, feeds_file)

    assert second.articles_new == 0 and second.articles_retried == 2  # the 500 and the timeout
    assert http_server.count("/p/huge") == 1 and http_server.count("/p/doc.pdf") == 1
    assert rows(
        db,
        "SELECT extraction_status, fetch_attempts FROM articles WHERE url = ?",
        [f"{base}/p/500"],
    ) == [("extracted", 2)]
    assert rows(db, "SELECT error_streak FROM feeds WHERE name = 'down'") == [(2,)]


def test_entries_recorded_before_a_crash_are_fetched_by_the_next_run(
    http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    """A run that dies after recording the polls (validators stored) loses no article."""
    feeds_file = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
    db = tmp_path / "w.duckdb"
    config = load_config(db, feeds_file)
    with connect(db) as con:  # the crashed run got this far: polls and entries recorded
        targets = polls.register_feeds(con, config.feeds)
        polls.record_polls(con, "crashed", poll_feeds(targets, FetchOptions.of(config.settings)))

    summary = run(db, feeds_file)

    assert [f.status for f in summary.feeds] == ["not_modified"] * 3
    assert summary.articles_new == 13
    assert rows(
        db,
        "SELECT count(*) FROM articles WHERE NOT is_baseline AND extraction_status = 'extracted'",
    ) == [(13,)]


def test_batches_are_spread_over_every_site_each_in_its_own_order() -> None:
    def candidate(url: str) -> ArticleCandidate:
        return ArticleCandidate(url, url, url, "f", url, "t", "", None, None)

    feed_order = [f"https://a.example/{n}" for n in range(5)]
    feed_order += [f"https://b.example/{n}" for n in range(2)]
    feed_order += [f"https://A.example:8443/{n}" for n in range(2)]  # another site: the port
    feed_order += ["http://a.example/x"]  # and another: the scheme
    todo = interleave_by_host([candidate(u) for u in feed_order])
    assert sorted(c.url for c in todo) == sorted(feed_order)
    first = [c.url for c in next(iter(batches(todo, 4)))]
    assert first == [
        "https://a.example/0",
        "https://b.example/0",
        "https://A.example:8443/0",
        "http://a.example/x",
    ]
    assert [c.url for c in todo if c.url.startswith("https://a.")] == feed_order[:5]
    assert [c.url for c in todo][-3:] == [f"https://a.example/{n}" for n in (2, 3, 4)]


def test_batches_can_start_with_a_smaller_one() -> None:
    items = list(range(11))
    assert [list(b) for b in batches(items, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert [list(b) for b in batches(items, 4, first=1)] == [
        [0],
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]
    assert [list(b) for b in batches(items, 4, first=4)] == [list(b) for b in batches(items, 4)]
    assert list(batches([], 4, first=1)) == []
