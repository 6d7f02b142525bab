"""Read a fetched body within a size limit: an HTTP response's (``_read_body``) and a local
file's (``_read_file``), for ``newsmon.extractors.fetch``.

- ``max_bytes`` counts the *decoded* body and is enforced while streaming, whether or not the
  server declared a Content-Length (one over the limit is refused before reading); over it is
  too_large;
- a Content-Encoding of gzip, x-gzip or deflate (raw deflate too), possibly stacked, is undone
  here in bounded steps, so a gzip bomb is stopped after ``max_bytes`` of output; any other
  coding is refused (connection);
- a local file is read only if it is a regular file (a FIFO, a device or a directory is not), and
  inflated within the limit if it is gzip, recognised by its magic bytes; a missing or unreadable
  file, or a corrupt or truncated gzip file, is file_error. Its content type is guessed from its
  name.

Failures are raised as ``_Failure`` (``newsmon.extractors.fetchtypes``).
"""

from __future__ import annotations

import mimetypes
import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

import aiohttp

from newsmon.extractors.fetchtypes import FetchResult, FetchStatus, _Failure
from newsmon.extractors.reasons import Reason

_GZIP_MAGIC = b"\x1f\x8b"


async def _read_body(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    declared = resp.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise _Failure(
            Reason.TOO_LARGE,
            f"Content-Length {declared} over the {max_bytes}-byte limit",
            resp.status,
        )
    decoder = _Decoder(resp.headers.get("content-encoding", ""), max_bytes, resp.status)
    parts: list[bytes] = []
    async for raw in resp.content.iter_any():
        parts.append(decoder.feed(raw))
    parts.append(decoder.flush())
    return b"".join(parts)


class _Inflater:
    """zlib decompression that never produces more than ``limit`` bytes in total."""

    def __init__(self, coding: str, limit: int, http_status: int | None) -> None:
        self._gzip = coding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._fresh = True  # deflate: nothing decoded yet, a raw-deflate fallback is possible
        self._limit = limit
        self._status = http_status
        self.total = 0

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            try:
                chunk = self._obj.decompress(data, self._limit - self.total + 1)
            except zlib.error:
                if self._gzip or not self._fresh:
                    raise
                # "deflate" sent as raw deflate (no zlib header), as some servers do
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                self._fresh = False
                continue
            self._fresh = False
            self._take(chunk, out)
            if self._obj.eof:
                rest = self._obj.unused_data
                if not (self._gzip and rest):
                    break  # trailing bytes after the stream are ignored
                self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)  # next gzip member
                data = rest
            else:
                data = self._obj.unconsumed_tail
        return b"".join(out)

    def flush(self) -> bytes:
        out: list[bytes] = []
        self._take(self._obj.flush(), out)
        return b"".join(out)

    @property
    def eof(self) -> bool:
        return self._obj.eof

    def _take(self, chunk: bytes, out: list[bytes]) -> None:
        self.total += len(chunk)
        if self.total > self._limit:
            raise _Failure(
                Reason.TOO_LARGE, f"decoded body over the {self._limit}-byte limit", self._status
            )
        out.append(chunk)


class _Decoder:
    """Undo a Content-Encoding (gzip, deflate, identity; possibly stacked), within a size limit."""

    def __init__(self, content_encoding: str, limit: int, http_status: int | None) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        for coding in codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise _Failure(
                    Reason.CONNECTION, f"unsupported Content-Encoding {coding!r}", http_status
                )
        # applied in the order listed, so undone in reverse
        self._stages = [_Inflater(c, limit, http_status) for c in reversed(codings)]
        self._limit = limit
        self._status = http_status
        self._total = 0

    def feed(self, data: bytes) -> bytes:
        for stage in self._stages:
            data = stage.feed(data)
        return self._count(data)

    def flush(self) -> bytes:
        data = b""
        for stage in self._stages:
            data = stage.feed(data) + stage.flush()
        return self._count(data)

    def _count(self, data: bytes) -> bytes:
        self._total += len(data)
        if self._total > self._limit:
            raise _Failure(
                Reason.TOO_LARGE, f"body over the {self._limit}-byte limit", self._status
            )
        return data


def _read_file(url: str, path: Path, max_bytes: int) -> FetchResult:
    """Read a local file (blocking; run in a thread), inflating it if it is gzip."""
    name = path.name
    try:
        # a regular file only: a FIFO would block the run until someone writes to it, a device
        # never ends, a directory is not a feed. O_NONBLOCK so that opening a FIFO cannot hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _Failure(Reason.FILE_ERROR, f"cannot read {path}: not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_bytes + 1)
            if data[:2] == _GZIP_MAGIC:
                data = _gunzip_file(fh, data, path, max_bytes)
                name = name.removesuffix(".gz").removesuffix(".gzip")
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        raise _Failure(Reason.FILE_ERROR, f"cannot read {path}: {detail}") from exc
    except ValueError as exc:  # a path the OS cannot take
        raise _Failure(Reason.FILE_ERROR, f"cannot read {path}: {exc}") from exc
    if len(data) > max_bytes:
        raise _Failure(Reason.TOO_LARGE, f"file over the {max_bytes}-byte limit")
    return FetchResult(
        url=url,
        final_url=url,
        status=FetchStatus.OK,
        reason=None,
        http_status=None,
        content=data,
        content_type=_guess_type(name),
        etag=None,
        last_modified=None,
        retry_after_s=None,
        duration_s=0.0,
        attempts=0,
        error=None,
    )


def _gunzip_file(fh: BinaryIO, head: bytes, path: Path, max_bytes: int) -> bytes:
    """Inflate a gzip file whose first bytes are ``head``, reading on from ``fh``, bounded."""
    inflater = _Inflater("gzip", max_bytes, None)
    parts: list[bytes] = []
    chunk = head
    try:
        while chunk and not inflater.eof:
            parts.append(inflater.feed(chunk))
            chunk = fh.read(64 * 1024)
        parts.append(inflater.flush())
    except zlib.error as exc:
        raise _Failure(Reason.FILE_ERROR, f"corrupt gzip file {path}: {exc}") from exc
    if not inflater.eof:
        raise _Failure(Reason.FILE_ERROR, f"truncated gzip file {path}")
    return b"".join(parts)


_EXTRA_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".html": "text/html",
    ".htm": "text/html",
}


def _guess_type(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name, strict=False)[0]
