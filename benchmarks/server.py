"""Serve a generated corpus on 127.0.0.1 the way news sites answer: slowly, and conditionally.

Each feed is one site with its own port (so per-host connection limits apply as they would to
40 different outlets). Every request waits ``latency_s`` before it is answered (default 0.1 s,
a typical round trip plus server time for a real site). Feeds and pages carry an ``ETag`` and a
``Last-Modified`` and answer ``304 Not Modified`` to a matching ``If-None-Match`` (or, without
one, ``If-Modified-Since``). Requests are counted by kind (feed, page, other) and status, so the
benchmark can check that a second ingest fetched no article page again.
"""

from __future__ import annotations

import email.utils
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from benchmarks.corpus import read_manifest

FEED_TYPE = "application/rss+xml"
PAGE_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Resource:
    kind: str  # feed | page
    file: Path | None  # pages are read from disk on each request
    body: bytes | None  # feeds are held in memory (their {{BASE}} is per site)
    content_type: str
    etag: str
    last_modified: str


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    owner: CorpusServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Site

    def do_GET(self) -> None:
        self.server.owner.answer(self)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark reports counts, not a log line per request."""


def not_modified(h: BaseHTTPRequestHandler, etag: str | None, last_modified: str | None) -> bool:
    """Whether a conditional GET may be answered 304 (RFC 9110: If-None-Match wins, weak tags
    compare equal; If-Modified-Since only when there is no If-None-Match). Also used by the
    test suite's server (tests/httpserver.py)."""
    inm = h.headers.get("If-None-Match")
    if inm is not None:
        if etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    ims = h.headers.get("If-Modified-Since")
    if ims is None or last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


class CorpusServer:
    """Threaded servers on 127.0.0.1, one per feed of the corpus under ``root``.

    Use as a context manager; ``feed_urls`` lists the feeds, ``counts()`` the requests so far.
    """

    def __init__(self, root: Path, latency_s: float = 0.1) -> None:
        self.latency_s = latency_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._sites: list[_Site] = []
        self._threads: list[threading.Thread] = []
        self._routes: dict[tuple[int, str], Resource] = {}
        self.feed_urls: list[str] = []
        self._load(root)

    def _load(self, root: Path) -> None:
        feeds = sorted((root / "feeds").glob("*.xml"))
        for i, feed in enumerate(feeds):
            site = _Site(("127.0.0.1", 0), _Handler)
            site.owner = self
            port = site.server_address[1]
            base = f"http://127.0.0.1:{port}"
            body = feed.read_bytes().replace(b"{{BASE}}", base.encode())
            self._routes[(port, "/feed.xml")] = Resource(
                "feed", None, body, FEED_TYPE, f'"feed-{i}-v1"', "Sun, 01 Nov 2026 06:00:00 GMT"
            )
            self._sites.append(site)
            self.feed_urls.append(f"{base}/feed.xml")
        for info in read_manifest(root):
            port = self._sites[info.feed].server_address[1]
            self._routes[(port, info.path)] = Resource(
                "page",
                root / "pages" / info.path.lstrip("/"),
                None,
                PAGE_TYPE,
                info.etag,
                info.last_modified,
            )

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> CorpusServer:
        for site in self._sites:
            t = threading.Thread(target=site.serve_forever, kwargs={"poll_interval": 0.2})
            t.daemon = True
            t.start()
            self._threads.append(t)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        for site in self._sites:
            site.shutdown()
            site.server_close()
        for t in self._threads:
            t.join(timeout=5)

    # -- what was asked -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Requests so far as ``{"page_200": n, "page_304": n, "feed_200": n, ...}``."""
        with self._lock:
            return {f"{kind}_{status}": n for (kind, status), n in sorted(self._counts.items())}

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # -- serving --------------------------------------------------------------------------------
    def answer(self, h: _Handler) -> None:
        port: int = h.server.server_address[1]
        resource = self._routes.get((port, h.path.split("?", 1)[0]))
        if self._stopping.wait(self.latency_s):
            h.close_connection = True
            return
        if resource is None:
            self._count("other", 404)
            self._send(h, 404, b"not found", "text/plain", None)
        elif not_modified(h, resource.etag, resource.last_modified):
            self._count(resource.kind, 304)
            self._send(h, 304, b"", None, resource)
        else:
            self._count(resource.kind, 200)
            body = resource.body if resource.file is None else resource.file.read_bytes()
            self._send(h, 200, body or b"", resource.content_type, resource)

    def _count(self, kind: str, status: int) -> None:
        with self._lock:
            self._counts[(kind, status)] += 1

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str | None,
        resource: Resource | None,
    ) -> None:
        try:
            h.send_response(status)
            if content_type:
                h.send_header("Content-Type", content_type)
            if resource is not None:
                h.send_header("ETag", resource.etag)
                h.send_header("Last-Modified", resource.last_modified)
            if status != 304:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if status != 304:
                h.wfile.write(body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True


__all__ = ["CorpusServer", "Resource"]
