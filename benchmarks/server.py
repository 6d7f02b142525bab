"""Serve a generated corpus on 127.0.0.1 the way news sites answer: slowly, and conditionally.

Each feed is one site with its own port (so per-host connection limits apply as they would to
40 different outlets). Every request waits ``latency_s`` before it is answered (default 0.1 s,
a typical round trip plus server time for a real site). Feeds and pages carry an ``ETag`` and a
``Last-Modified`` and answer ``304 Not Modified`` to a matching ``If-None-Match`` (or, without
one, ``If-Modified-Since``). Requests are counted by kind (feed, page, other) and status, so the
benchmark can check that a second ingest fetched no article page again.

The sites stand in for servers on other machines, but they run on the two cores the benchmark
measures, so they are made cheap: one asyncio loop in one thread serves every site (HTTP/1.1,
keep-alive, GET and HEAD), the latency is a timer rather than a sleeping thread, and an
answer's status line and headers are one string built from the resource's fields. A request
costs about 0.3 ms of CPU, against 0.65 ms with ``http.server`` alone (a thread per connection,
``email`` header parsing) and twice that during an ingest, its threads contending for the GIL.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from benchmarks.corpus import read_manifest

FEED_TYPE = "application/rss+xml"
PAGE_TYPE = "text/html; charset=utf-8"
MAX_HEAD = 16_384  # bytes of request line and headers; more is an error


@dataclass(frozen=True)
class Resource:
    kind: str  # feed | page
    file: Path | None  # pages are read from disk on each request
    body: bytes | None  # feeds are held in memory (their {{BASE}} is per site)
    content_type: str
    etag: str
    last_modified: str

    def head(self, status: int, length: int) -> bytes:
        """The status line and headers of an answer with this resource."""
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        if status != 304:
            lines += [f"Content-Type: {self.content_type}", f"Content-Length: {length}"]
        lines += [f"ETag: {self.etag}", f"Last-Modified: {self.last_modified}", "", ""]
        return "\r\n".join(lines).encode("latin-1")


_REASONS = {
    200: "OK",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    501: "Not Implemented",
}


def not_modified(
    header: Callable[[str], str | None], etag: str | None, last_modified: str | None
) -> bool:
    """Whether a conditional GET may be answered 304 (RFC 9110: If-None-Match wins, weak tags
    compare equal; If-Modified-Since only when there is no If-None-Match). ``header`` looks a
    request header up by name, case-insensitively. Also used by the test suite's server
    (tests/httpserver.py)."""
    inm = header("if-none-match")
    if inm is not None:
        if etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    ims = header("if-modified-since")
    if ims is None or last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
        modified = email.utils.parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
    return modified <= since


def _plain(status: int, body: bytes = b"", *, with_body: bool = True) -> bytes:
    """An answer that is no resource (an error), with a plain-text ``body`` (its length
    announced even when ``with_body`` is False, as for a HEAD)."""
    head = f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
    if body:
        head += "Content-Type: text/plain\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + (body if with_body else b"")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    close: bool  # the client asked for the connection to end with this answer
    headers: dict[str, str]  # names lower-case


def _parse_head(head: bytes) -> _Request | None:
    """The request line and headers (without the blank line), or None if they are not HTTP."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    close = connection == "close" or (parts[2] == "HTTP/1.0" and connection != "keep-alive")
    return _Request(parts[0], parts[1].split("?", 1)[0], close, headers)


class _Connection(asyncio.Protocol):
    """One client connection to one site: requests answered one at a time, in order, each
    after the latency."""

    def __init__(self, owner: CorpusServer, port: int) -> None:
        self.owner = owner
        self.port = port
        self.buffer = b""
        self.waiting = False  # a request is being answered (its latency not over yet)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.owner.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.owner.connections.discard(self)

    def _next(self) -> None:
        if self.waiting or self.transport is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._fail()
            return
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        request = _parse_head(head)
        if request is None or "content-length" in request.headers:
            self._fail()  # (no request body is expected: GET and HEAD only)
            return
        self.waiting = True
        self.owner.loop.call_later(self.owner.latency_s, self._answer, request)

    def _answer(self, request: _Request) -> None:
        self.waiting = False
        if self.transport is None or self.transport.is_closing():
            return
        answer = self.owner.answer(self.port, request)
        if request.close:
            status, _, rest = answer.partition(b"\r\n")
            self.transport.write(status + b"\r\nConnection: close\r\n" + rest)
            self.transport.close()
        else:
            self.transport.write(answer)
            self._next()

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.write(_plain(400))
        self.transport.close()


class CorpusServer:
    """The corpus under ``root`` on 127.0.0.1, one port per feed, served from one thread.

    Use as a context manager; ``feed_urls`` lists the feeds, ``counts()`` the requests so far.
    """

    def __init__(self, root: Path, latency_s: float = 0.1) -> None:
        self.latency_s = latency_s
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._routes: dict[tuple[int, str], Resource] = {}
        self.connections: set[_Connection] = set()  # open client connections (loop thread only)
        self.feed_urls: list[str] = []
        self._load(root)

    def _load(self, root: Path) -> None:
        feeds = sorted((root / "feeds").glob("*.xml"))
        ports = []
        for i, feed in enumerate(feeds):
            sock = socket.create_server(("127.0.0.1", 0), backlog=128)
            self._sockets.append(sock)
            port = sock.getsockname()[1]
            ports.append(port)
            base = f"http://127.0.0.1:{port}"
            body = feed.read_bytes().replace(b"{{BASE}}", base.encode())
            self._routes[(port, "/feed.xml")] = Resource(
                "feed", None, body, FEED_TYPE, f'"feed-{i}-v1"', "Sun, 01 Nov 2026 06:00:00 GMT"
            )
            self.feed_urls.append(f"{base}/feed.xml")
        for info in read_manifest(root):
            self._routes[(ports[info.feed], info.path)] = Resource(
                "page",
                root / "pages" / info.path.lstrip("/"),
                None,
                PAGE_TYPE,
                info.etag,
                info.last_modified,
            )

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> CorpusServer:
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        started.wait()
        return self

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def listen() -> list[asyncio.Server]:
            servers = []
            for sock in self._sockets:
                port: int = sock.getsockname()[1]
                factory = (lambda p: lambda: _Connection(self, p))(port)
                servers.append(await self.loop.create_server(factory, sock=sock))
            return servers

        servers = self.loop.run_until_complete(listen())
        started.set()
        try:
            self.loop.run_forever()
        finally:
            for server in servers:
                server.close()
            for connection in list(self.connections):  # clients still connected at the end
                if connection.transport is not None:
                    connection.transport.close()
            self.loop.run_until_complete(asyncio.sleep(0))
            self.loop.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    # -- what was asked -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Requests so far as ``{"page_200": n, "page_304": n, "feed_200": n, ...}``."""
        with self._lock:
            return {f"{kind}_{status}": n for (kind, status), n in sorted(self._counts.items())}

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    # -- serving --------------------------------------------------------------------------------
    def answer(self, port: int, request: _Request) -> bytes:
        """The whole answer to ``request`` on the site at ``port``: status line, headers, body."""
        resource = self._routes.get((port, request.path))
        if request.method not in ("GET", "HEAD"):
            self._count("other", 501)
            return _plain(501)
        if resource is None:
            self._count("other", 404)
            return _plain(404, b"not found", with_body=request.method == "GET")
        if not_modified(request.headers.get, resource.etag, resource.last_modified):
            self._count(resource.kind, 304)
            return resource.head(304, 0)
        self._count(resource.kind, 200)
        body = resource.body if resource.file is None else resource.file.read_bytes()
        assert body is not None
        return resource.head(200, len(body)) + (body if request.method == "GET" else b"")

    def _count(self, kind: str, status: int) -> None:
        with self._lock:
            self._counts[(kind, status)] += 1


__all__ = ["CorpusServer", "Resource", "not_modified"]
