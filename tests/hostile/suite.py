"""The hostile-input suite's machinery: the cases' feeds on one loopback server, one real ingest.

Every ``test_*.py`` module in this package that defines ``serve(server) -> {feed name: URL}`` is
a case: ``serve`` registers its routes on the shared ``LoopbackHTTPServer`` and names its feeds.
``HostileRun.start`` serves every case at once and runs the real Prefect ``ingest`` flow over all
of them twice (the second run is the retry / idempotency check), with the limits in ``ENV``;
the case modules then assert on the warehouse rows their feeds produced. So each case also
proves that it did not disturb the others: they all share the runs.

``benchmarks/hostile.py`` runs the same suite outside pytest to measure time and memory.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests import helpers
from tests.httpserver import LoopbackHTTPServer

PACKAGE = "tests.hostile"
SECRET_PASSWORD = "S3cret-Passw0rd-4-feeds"  # in a feed URL: must never be stored or shown
SMTP_PASSWORD = "smtp-Secret-9f2c7e"  # in NEWSMON_SMTP_PASSWORD during the runs

# The limits the suite runs with (small enough to keep it fast, large enough for real cases).
ENV = {
    "NEWSMON_HTTP_TIMEOUT": "3",  # per read: far longer than the drip's 0.5 s between bytes
    "NEWSMON_HTTP_DEADLINE": "4",  # per request, all hops and the body included
    "NEWSMON_HTTP_RETRIES": "0",  # transient failures are retried by the second run instead
    "NEWSMON_HTTP_MAX_BYTES": "8000000",
    "NEWSMON_HTTP_BATCH_MAX_BYTES": "40000000",  # five pages just under the limit (near_limit)
    "NEWSMON_HTTP_MAX_REDIRECTS": "5",
    "NEWSMON_MAX_FEED_ITEMS": "200",
    "NEWSMON_MAX_TEXT_CHARS": "100000",
    "NEWSMON_WORKERS": "1",
    # only the suite's own server is allowed: every other private address stays refused
    "NEWSMON_ALLOW_PRIVATE_NETWORKS": "false",
    "NEWSMON_ALLOWED_HOSTS": "127.0.0.1",
    "NEWSMON_SMTP_PASSWORD": SMTP_PASSWORD,
}

Serve = Callable[[LoopbackHTTPServer], dict[str, str]]


def rss(items: str, title: str = "Hostile", extra: str = "") -> bytes:
    """An RSS 2.0 document around ``items`` (raw XML)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://example.org/</link>{extra}{items}</channel></rss>"
    ).encode()


def item(title: str, link: str, guid: str | None = None, summary: str = "", extra: str = "") -> str:
    guid_xml = f"<guid>{guid}</guid>" if guid is not None else ""
    return (
        f"<item><title>{title}</title><link>{link}</link>{guid_xml}"
        f"<description>{summary}</description>{extra}</item>"
    )


def page(title: str, words: int = 120) -> bytes:
    """A small article page trafilatura extracts (no dates in it)."""
    body = " ".join(
        f"{title} paragraph text number {i} about alliance logistics." for i in range(words // 8)
    )
    paragraphs = "".join(f"<p>{body}</p>" for _ in range(3))
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


def cases() -> dict[str, Serve]:
    """{module name: serve} for every case module in this package."""
    import tests.hostile as pkg

    found: dict[str, Serve] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        serve = getattr(module, "serve", None)
        if callable(serve):
            found[info.name] = serve
    return found


def write_feeds(path: Path, feeds: dict[str, str]) -> Path:
    lines: list[str] = []
    for name, url in feeds.items():
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Exactly these NEWSMON_* variables (others unset) while the block runs."""
    keys = {k for k in os.environ if k.startswith("NEWSMON_")} | set(values)
    before = {k: os.environ.get(k) for k in keys}
    for key in keys - set(values):
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@dataclass
class HostileRun:
    """One server with every case, and two ingest runs over all of them."""

    server: LoopbackHTTPServer
    db: Path
    feeds: dict[str, str]  # feed name -> URL
    summaries: list[Any] = field(default_factory=list)  # flows.ingest.RunSummary per run
    seconds: list[float] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)  # every log record during the runs

    @classmethod
    def start(cls, server: LoopbackHTTPServer, workdir: Path, runs: int = 2) -> HostileRun:
        from newsmon.flows.ingest import ingest

        feeds: dict[str, str] = {}
        for name, serve in sorted(cases().items()):
            for feed, url in serve(server).items():
                assert feed not in feeds, f"{name}: feed name {feed!r} used twice"
                feeds[feed] = url
        feeds_file = write_feeds(workdir / "feeds.toml", feeds)
        run = cls(server=server, db=workdir / "hostile.duckdb", feeds=feeds)
        capture = _Capture()
        root = logging.getLogger()
        root.addHandler(capture)
        old_level = root.level
        root.setLevel(logging.INFO)
        try:
            with environment(ENV):
                for _ in range(runs):
                    start = time.monotonic()
                    run.summaries.append(ingest(db=str(run.db), feeds_file=str(feeds_file)))
                    run.seconds.append(time.monotonic() - start)
        finally:
            root.removeHandler(capture)
            root.setLevel(old_level)
        run.log_lines = capture.lines
        return run

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return helpers.rows(self.db, sql, params)

    def feed(self, name: str) -> tuple[Any, ...]:
        """(status, reason, http_status, error, entries_seen, bozo) of the feed's first poll."""
        [row] = self.rows(
            "SELECT x.status, x.reason, x.http_status, x.error, x.entries_seen, x.bozo "
            "FROM feed_fetches x JOIN feeds f USING (feed_id) JOIN runs r USING (run_id) "
            "WHERE f.name = ? ORDER BY r.started_at LIMIT 1",
            [name],
        )
        return row

    def articles(self, name: str) -> list[tuple[Any, ...]]:
        """(url, title, summary, extraction_status, extraction_reason, http_status,
        published_at) of the articles first seen in the feed, by URL."""
        return self.rows(
            "SELECT a.url, a.title, a.summary, a.extraction_status, a.extraction_reason, "
            "a.http_status, a.published_at FROM articles a JOIN feeds f USING (feed_id) "
            "WHERE f.name = ? ORDER BY a.url",
            [name],
        )

    def path(self, url: str) -> str:
        return url.removeprefix(self.server.base_url)


def quoted(text: str) -> str:
    return quote(text, safe="")
