"""A small threaded HTTP/1.1 server on 127.0.0.1 for tests: routes with canned, misbehaving replies.

Start it with ``with LoopbackHTTPServer() as server:`` (or the ``http_server`` fixture), register
routes, and point code at ``server.url("/path")``::

    server.add("/feed.xml", body=b"<rss/>", content_type="application/rss+xml",
               etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    server.add("/slow", body=b"x", delay_s=2)                  # wait before answering
    server.add("/drip", body=b"x" * 100, drip_s=0.5)           # one byte every 0.5 s
    server.add("/gated", body=b"x", before=barrier.wait)       # call something first
    server.add("/gz", body=b"hello", gzip=True)                # Content-Encoding: gzip
    server.add("/big", body=b"x" * 10_000, content_length=False)  # chunked, no Content-Length
    server.add("/cut", body=b"x" * 1000, truncate_at=10)       # close after 10 body bytes
    server.add("/gone", status=404)
    server.redirect("/old", "/new")                            # 302 (relative or absolute)
    server.add_sequence("/flaky", [Reply(status=503), Reply(body=b"ok")])  # last one repeats
    server.add_handler("/custom", fn)                          # fn(handler) writes the reply

Every request is recorded: ``server.count("/feed.xml")``, ``server.requests("/feed.xml")[0]
.headers["if-none-match"]`` (header names lower-case), ``server.max_in_flight`` (the most
requests being answered at the same moment). Unknown paths answer 404. Routes match on the path
with its query string first, then on the path alone. Only GET and HEAD are served.
"""

from __future__ import annotations

import functools
import gzip as gzip_module
import socket
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from benchmarks.server import not_modified

__all__ = ["LoopbackHTTPServer", "RecordedRequest", "Reply", "closed_port"]


@dataclass(frozen=True)
class Reply:
    """One canned response. ``etag``/``last_modified`` make conditional requests answer 304."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay_s: float = 0.0  # sleep before sending anything
    drip_s: float | None = None  # send the body one byte every drip_s seconds
    gzip: bool = False  # gzip the body and send Content-Encoding: gzip
    content_length: bool = True  # False: chunked transfer encoding, no Content-Length
    truncate_at: int | None = None  # announce the full length, send this many bytes, close
    before: Callable[[], object] | None = None  # called first (e.g. wait for another request)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    time: float  # time.monotonic() on arrival


Handler = Callable[[BaseHTTPRequestHandler], None]


_RESERVED: list[socket.socket] = []  # bound, never listening: kept until the process ends


def closed_port() -> int:
    """A port on 127.0.0.1 where connections are refused, for as long as the test process runs.

    The port stays bound to a socket that never listens (the kernel refuses connections to it),
    so nothing else on the machine can take it between this call and the test's connect.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _RESERVED.append(sock)
    port: int = sock.getsockname()[1]
    return port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, size limits) cause broken pipes: expected, keep quiet.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def do_HEAD(self) -> None:
        self.server.owner._dispatch(self)


class LoopbackHTTPServer:
    """Threaded HTTP server on 127.0.0.1 (a free port by default). See the module docstring."""

    def __init__(self, port: int = 0) -> None:
        self._httpd = _Server(("127.0.0.1", port), _RequestHandler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._routes: dict[str, Handler] = {}
        self._sequences: dict[str, tuple[list[Reply], list[int]]] = {}
        self._requests: dict[str, list[RecordedRequest]] = defaultdict(list)
        self._in_flight = 0
        self.max_in_flight = 0
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LoopbackHTTPServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delays and drips
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LoopbackHTTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- routes ---------------------------------------------------------------------------------
    def add(self, path: str, body: bytes | str = b"", **reply: object) -> Reply:
        """Serve one canned reply on ``path``; keyword arguments are the fields of ``Reply``."""
        data = body.encode() if isinstance(body, str) else body
        r = Reply(body=data, **reply)  # type: ignore[arg-type]
        self.add_sequence(path, [r])
        return r

    def add_sequence(self, path: str, replies: Iterable[Reply]) -> None:
        """Answer the n-th request on ``path`` with the n-th reply; the last one repeats."""
        items = list(replies)
        if not items:
            raise ValueError("add_sequence needs at least one reply")
        with self._lock:
            self._sequences[path] = (items, [0])
            self._routes[path] = functools.partial(self._serve_sequence, path=path)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.add(path, status=status, content_type=None, headers={"Location": location})

    def add_handler(self, path: str, handler: Handler) -> None:
        """Custom route: ``handler(request_handler)`` must write the whole response."""
        with self._lock:
            self._routes[path] = handler

    # -- what was asked -------------------------------------------------------------------------
    def requests(self, path: str) -> list[RecordedRequest]:
        """Requests received on ``path`` (matched like routes: with query, else path only)."""
        with self._lock:
            if path in self._requests:
                return list(self._requests[path])
            return [r for p, rs in self._requests.items() if urlsplit(p).path == path for r in rs]

    def count(self, path: str) -> int:
        return len(self.requests(path))

    def counts(self) -> dict[str, int]:
        """How many requests each path received."""
        with self._lock:
            return {path: len(rs) for path, rs in self._requests.items() if rs}

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self.max_in_flight = 0

    # -- serving --------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self._lock:
            self._requests[h.path].append(
                RecordedRequest(h.command, h.path, headers, time.monotonic())
            )
            route = self._routes.get(h.path) or self._routes.get(urlsplit(h.path).path)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if route is None:
                self._send(h, Reply(body=b"not found", status=404))
            else:
                route(h)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve_sequence(self, h: BaseHTTPRequestHandler, *, path: str) -> None:
        with self._lock:
            items, counter = self._sequences[path]
            reply = items[min(counter[0], len(items) - 1)]
            counter[0] += 1
        self._send(h, reply)

    def _send(self, h: BaseHTTPRequestHandler, r: Reply) -> None:
        if r.before is not None:
            r.before()
        if r.delay_s and self._stopping.wait(r.delay_s):
            h.close_connection = True
            return
        status, body = r.status, r.body
        if _not_modified(h, r):
            status, body = 304, b""
        if r.gzip and status != 304:
            body = gzip_module.compress(body)
        h.send_response(status)
        if r.content_type and status != 304:
            h.send_header("Content-Type", r.content_type)
        if r.etag:
            h.send_header("ETag", r.etag)
        if r.last_modified:
            h.send_header("Last-Modified", r.last_modified)
        if r.gzip and status != 304:
            h.send_header("Content-Encoding", "gzip")
        for name, value in r.headers.items():
            h.send_header(name, value)
        no_body = h.command == "HEAD" or status == 304 or 100 <= status < 200 or status == 204
        chunked = not r.content_length and not no_body
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        elif status != 304:
            h.send_header("Content-Length", str(len(body)))
        if r.truncate_at is not None:
            h.send_header("Connection", "close")
            h.close_connection = True
        h.end_headers()
        if no_body:
            return
        if r.truncate_at is not None:
            body = body[: r.truncate_at]
        if r.drip_s is not None:
            for i in range(len(body)):
                self._write(h, body[i : i + 1], chunked)
                if self._stopping.wait(r.drip_s):
                    h.close_connection = True
                    return
        else:
            step = 64 * 1024
            for i in range(0, len(body), step):
                self._write(h, body[i : i + step], chunked)
        if chunked and r.truncate_at is None:
            h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, data: bytes, chunked: bool) -> None:
        if chunked:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            h.wfile.write(data)
        h.wfile.flush()


def _not_modified(h: BaseHTTPRequestHandler, r: Reply) -> bool:
    """Only a 200 to a GET or HEAD can become a 304; then the request's conditions decide."""
    if r.status != 200 or h.command not in ("GET", "HEAD"):
        return False
    return not_modified(h.headers.get, r.etag, r.last_modified)
