"""Fetch feeds and article pages concurrently, within limits, without raising for one bad URL.

``fetch_batch`` (sync) and ``fetch_all`` (async) take ``FetchRequest`` values and return one
``FetchResult`` per request, in the same order. Each result is ``ok`` (with the decoded body),
``not_modified`` (a 304 answer to the request's ETag / Last-Modified) or ``failed`` with a
``Reason`` and a one-line ``error``.

Limits, all in ``FetchOptions``:

- concurrency: at most ``max_concurrency`` requests in flight, at most ``per_host`` per
  scheme://host:port (a redirect hop counts against the host it goes to);
- time: ``timeout_s`` for connecting and for each read, and ``deadline_s`` for a whole attempt
  (all redirect hops and the body), so a server dripping a byte at a time is cut off;
- size: ``max_bytes`` of *decoded* body, enforced while streaming, whether or not the server
  declared a Content-Length; gzip/deflate are inflated in bounded steps, so a gzip bomb is
  stopped after ``max_bytes`` of output (``newsmon.extractors.fetchbody``); the bodies one call
  returns hold at most ``batch_max_bytes`` together: a body that would pass it is dropped as
  ``deferred`` (retryable, not retried in this call, and not counted as a page's attempt), so
  many pages just under ``max_bytes`` cannot take the memory of a batch of them;
- redirects: at most ``max_redirects``; a redirect to anything but http(s) is refused (bad_url);
- addresses: connections go only to addresses ``addresses`` (an ``AddressPolicy``) allows, checked
  on the resolved IP at connect time (``newsmon.extractors.netguard``); by default loopback,
  private, link-local, multicast, reserved and cloud metadata addresses are refused
  (blocked_address), for the first request and every redirect hop alike; a request sent through a
  proxy (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``, not ``NO_PROXY``) is connected by the proxy,
  so only an IP-literal or ``localhost`` host can be refused for it;
- retries: up to ``retries`` more attempts, with exponential backoff and jitter, only for
  transient failures (``reasons.RETRYABLE``: timeouts, DNS, refused, connection errors, 5xx) and
  429; a Retry-After on 429/503 is honoured up to ``max_retry_after_s``, beyond which the request
  is not retried and ``retry_after_s`` is left for the scheduler. 4xx, too_large, bad_url and
  too_many_redirects are never retried.

A URL without a scheme, or a ``file://`` URL, is read from the local disk (same size limit; a
gzip file, recognised by its magic bytes, is inflated within the limit; read by
``newsmon.extractors.fetchbody``). A missing or unreadable file is ``file_error``. Local files are
never "not modified": ETag/Last-Modified are not used.

Credentials: ``final_url`` never carries ``user:password@``, and ``error`` never shows it (a failed
result's ``error`` is redacted by ``_failed``, in ``newsmon.extractors.fetchtypes``).

The client is aiohttp (one session per call, no automatic decompression, redirects or
``trust_env``: newsmon does those within its limits; HTTP proxies come from the environment,
read once per call, and ``~/.netrc`` is never read). It costs about a third of httpx's CPU per page
(docs/performance.md); URLs are still parsed and joined by ``httpx.URL``, a strict parser.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import socket
import time
import urllib.request
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import getproxies, url2pathname

import aiohttp
import httpx
from yarl import URL

from newsmon.extractors.fetchbody import _read_body, _read_file
from newsmon.extractors.fetchtypes import (
    FetchOptions,
    FetchRequest,
    FetchResult,
    FetchStatus,
    HostCircuit,
    _failed,
    _Failure,
    _redact,
)
from newsmon.extractors.netguard import (
    BlockedAddressError,
    GuardedResolver,
    ResolveTimeoutError,
    tls_context,
)
from newsmon.extractors.reasons import RETRYABLE, Reason
from newsmon.extractors.urls import strip_userinfo

__all__ = [
    "FetchOptions",
    "FetchRequest",
    "FetchResult",
    "FetchStatus",
    "HostCircuit",
    "fetch_all",
    "fetch_batch",
]

log = logging.getLogger(__name__)

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

_NOT_TRIED = "not tried"


def _opens_circuit(result: FetchResult) -> bool:
    if result.status is not FetchStatus.FAILED:
        return False
    if result.reason in (Reason.DNS, Reason.REFUSED):
        return True
    return result.reason is Reason.TIMEOUT and (result.error or "").startswith("connect timeout")


def _host_key(url: str) -> str | None:
    try:
        target = _target(url)
    except _Failure:
        return None
    if isinstance(target, _File):
        return None
    return _host_of(target.url)


def _host_of(url: httpx.URL) -> str:
    """The key of a host's slot and circuit."""
    return f"{url.scheme}://{url.host}:{url.port or ''}"


# -- public entry points --------------------------------------------------------------------------


def fetch_batch(
    requests: Sequence[FetchRequest | str], options: FetchOptions | None = None
) -> list[FetchResult]:
    """Fetch every request (sync entry point); results are in the order of ``requests``.

    Runs its own event loop; when called from a thread that already runs one, it runs in a
    helper thread instead.
    """
    opts = options or FetchOptions()
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        return asyncio.run(fetch_all(requests, opts))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsmon-fetch") as pool:
        return pool.submit(lambda: asyncio.run(fetch_all(requests, opts))).result()


async def fetch_all(
    requests: Sequence[FetchRequest | str], options: FetchOptions | None = None
) -> list[FetchResult]:
    """Fetch every request concurrently within the limits; results in the order of ``requests``."""
    opts = options or FetchOptions()
    reqs = [FetchRequest(r) if isinstance(r, str) else r for r in requests]
    if not reqs:
        return []
    # A request that goes through a proxy is connected by the proxy (newsmon cannot check the
    # address: literal hosts only); every other connection is guarded, including those that
    # NO_PROXY sends direct. The proxy settings are read here, once: aiohttp's own trust_env
    # reads them (and ~/.netrc, whose passwords must not go to the strangers' sites newsmon
    # fetches from) again for every request.
    proxies = _env_proxies() if opts.trust_env else {}
    proxy_hosts = {str(httpx.URL(v).host) for k, v in proxies.items() if k != "no"}
    connector = aiohttp.TCPConnector(
        limit=opts.max_concurrency,
        limit_per_host=0,  # the fetcher's own per-host slots decide
        ssl=tls_context(opts.trust_env),
        resolver=GuardedResolver(opts.addresses, opts.timeout_s, trusted=proxy_hosts),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=opts.timeout_s, sock_read=opts.timeout_s
        ),
        headers={"User-Agent": opts.user_agent, "Accept-Encoding": "gzip, deflate"},
        auto_decompress=False,  # inflated here, within max_bytes
    ) as session:
        fetcher = _Fetcher(session, opts, proxies)
        return list(await asyncio.gather(*(fetcher.fetch(r) for r in reqs)))


def _env_proxies() -> dict[str, str]:
    """HTTP(S)_PROXY / ALL_PROXY / NO_PROXY from the environment; empty without a proxy. A
    proxy given as ``host:port`` is an HTTP proxy, as curl and httpx read it."""
    proxies = {
        k: v if k == "no" or "://" in v else f"http://{v}" for k, v in getproxies().items() if v
    }
    return proxies if any(k in proxies for k in ("http", "https", "all")) else {}


def _proxy_for(url: httpx.URL, proxies: dict[str, str]) -> str | None:
    """The proxy for ``url``, or None to connect directly (no proxy, or NO_PROXY names it)."""
    # (NO_PROXY, in the dict read for the batch; typeshed lacks this stdlib function)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or bypass(url.host, proxies):
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    scheme = urlsplit(proxy).scheme.lower() if proxy else "http"
    if scheme not in ("http", "https"):
        raise _Failure(Reason.CONNECTION, f"unsupported proxy {scheme}:// (HTTP only)")
    return proxy


# -- internals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Redirect:
    location: str
    http_status: int


@dataclass(frozen=True)
class _Http:
    url: httpx.URL


@dataclass(frozen=True)
class _File:
    path: Path


class _Fetcher:
    def __init__(
        self, session: aiohttp.ClientSession, options: FetchOptions, proxies: dict[str, str]
    ) -> None:
        self._session = session
        self._opts = options
        self._proxies = proxies
        self._all = asyncio.Semaphore(options.max_concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._held = 0  # bytes of the bodies this call returns (FetchOptions.batch_max_bytes)

    def _host_slot(self, url: httpx.URL) -> asyncio.Semaphore:
        key = _host_of(url)
        sem = self._hosts.get(key)
        if sem is None:
            sem = self._hosts[key] = asyncio.Semaphore(self._opts.per_host)
        return sem

    def _check_circuit(self, url: httpx.URL) -> None:
        tripped = self._opts.circuit.tripped(_host_of(url))
        if tripped is not None:
            raise _Failure(
                tripped.reason or Reason.CONNECTION,
                f"{_NOT_TRIED}: the host failed earlier in this run ({tripped.error})",
            )

    async def fetch(self, req: FetchRequest) -> FetchResult:
        start = time.monotonic()
        attempts = 0
        circuit = self._opts.circuit
        key = _host_key(req.url)
        while True:
            attempts += 1
            result = await self._attempt(req)
            if (result.error or "").startswith(_NOT_TRIED):
                attempts -= 1  # no request was made
                break
            if key and _opens_circuit(result):
                circuit.trip(key, result)  # one try per run: the next run retries the host
                break
            if attempts > self._opts.retries or not _transient(result):
                break
            delay = self._backoff(attempts, result.retry_after_s)
            if delay is None:
                break
            await asyncio.sleep(delay)
        return replace(result, attempts=attempts, duration_s=time.monotonic() - start)

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float | None:
        delay: float = self._opts.backoff_s * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.0)
        if retry_after_s is not None:
            if retry_after_s > self._opts.max_retry_after_s:
                return None  # the server asks for longer than we wait: leave it to the scheduler
            delay = max(delay, retry_after_s)
        return delay

    async def _attempt(self, req: FetchRequest) -> FetchResult:
        url = req.url
        try:
            target = _target(url)
            if isinstance(target, _File):
                async with self._all:
                    return await asyncio.to_thread(
                        _read_file, url, target.path, self._opts.max_bytes
                    )
            return await self._fetch_http(req, target.url)
        except _Failure as f:
            shown = strip_userinfo(url)
            return _failed(url, shown, f.reason, f.message, f.http_status, f.retry_after_s)
        except Exception as exc:  # last resort: an unexpected error must not stop the batch
            # no exc_info: a traceback would carry the URL (and any credentials) in its frames
            log.warning("unexpected error fetching %s: %s", _redact(url), _redact(_describe(exc)))
            return _failed(
                url, strip_userinfo(url), Reason.CONNECTION, f"unexpected {_describe(exc)}"
            )

    async def _fetch_http(self, req: FetchRequest, url: httpx.URL) -> FetchResult:
        headers: dict[str, str] = {}
        # a validator a server sent with control characters cannot be sent back (aiohttp refuses
        # the header): fetch unconditionally rather than fail on every poll
        if req.etag and _header_safe(req.etag):
            headers["If-None-Match"] = req.etag
        if req.last_modified and _header_safe(req.last_modified):
            headers["If-Modified-Since"] = req.last_modified
        loop = asyncio.get_running_loop()
        deadline_at: float | None = None
        current = url
        last_status: int | None = None
        try:
            for _hop in range(self._opts.max_redirects + 1):
                # host slot first, then a global one: requests queued behind a busy host do not
                # hold global slots; nothing is held across hops, so hops cannot deadlock
                async with self._host_slot(current), self._all:
                    self._check_circuit(current)  # it may have opened while this one waited
                    if deadline_at is None:  # the deadline starts once the first hop may run
                        deadline_at = loop.time() + self._opts.deadline_s
                    # a host that names its address is checked here (aiohttp does not resolve
                    # it, a proxy would); other names by the resolver, or behind a proxy not
                    refused = self._opts.addresses.literal_refusal(current.host)
                    if refused is not None:
                        raise _Failure(Reason.BLOCKED_ADDRESS, refused, last_status)
                    proxy = _proxy_for(current, self._proxies)
                    async with asyncio.timeout_at(deadline_at):
                        outcome = await self._hop(req, current, headers, proxy)
                if isinstance(outcome, FetchResult):
                    return outcome
                last_status = outcome.http_status
                current = httpx.URL(outcome.location)
            raise _Failure(
                Reason.TOO_MANY_REDIRECTS,
                f"more than {self._opts.max_redirects} redirects",
                http_status=last_status,
            )
        except _Failure as f:
            return _failed(
                req.url, _public(current), f.reason, f.message, f.http_status, f.retry_after_s
            )
        except BlockedAddressError as exc:
            return _failed(req.url, _public(current), Reason.BLOCKED_ADDRESS, str(exc))
        except ResolveTimeoutError as exc:
            return _failed(req.url, _public(current), Reason.TIMEOUT, str(exc))
        except aiohttp.ServerTimeoutError as exc:  # a TimeoutError too: before the deadline's
            reason, message = _classify(exc, self._opts)
            return _failed(req.url, _public(current), reason, message)
        except TimeoutError:  # asyncio.timeout_at: the total deadline
            return _failed(
                req.url,
                _public(current),
                Reason.TIMEOUT,
                f"deadline of {self._opts.deadline_s:g}s exceeded",
            )
        except (aiohttp.ClientError, OSError, zlib.error) as exc:
            reason, message = _classify(exc, self._opts)
            return _failed(req.url, _public(current), reason, message)

    async def _hop(
        self, req: FetchRequest, url: httpx.URL, headers: dict[str, str], proxy: str | None
    ) -> FetchResult | _Redirect:
        async with self._session.get(
            URL(str(url), encoded=True),
            headers=headers,
            allow_redirects=False,
            proxy=proxy,
        ) as resp:
            code = resp.status
            final = _public(url)
            if 300 <= code < 400 and code != 304:
                return _redirect_target(url, code, resp.headers.get("location"))
            etag = resp.headers.get("etag")
            last_modified = resp.headers.get("last-modified")
            max_age = _max_age(resp.headers.get("cache-control"))
            if code == 304:
                return FetchResult(
                    url=req.url,
                    final_url=final,
                    status=FetchStatus.NOT_MODIFIED,
                    reason=None,
                    http_status=code,
                    content=b"",
                    content_type=resp.headers.get("content-type"),
                    etag=etag or req.etag,
                    last_modified=last_modified or req.last_modified,
                    retry_after_s=None,
                    duration_s=0.0,
                    attempts=0,
                    error=None,
                    max_age_s=max_age,
                )
            if not 200 <= code < 300:
                retry_after = (
                    _parse_retry_after(resp.headers.get("retry-after"))
                    if code in (429, 503)
                    else None
                )
                reason = Reason.HTTP_5XX if code >= 500 else Reason.HTTP_4XX
                phrase = f" {resp.reason}" if resp.reason else ""
                raise _Failure(reason, f"HTTP {code}{phrase}", code, retry_after)
            content = await _read_body(resp, self._opts.max_bytes)
            if self._held + len(content) > self._opts.batch_max_bytes:
                raise _Failure(
                    Reason.DEFERRED,
                    f"the batch already holds {self._held} bytes of pages "
                    f"(NEWSMON_HTTP_BATCH_MAX_BYTES): fetched again by the next run",
                )
            self._held += len(content)
            return FetchResult(
                url=req.url,
                final_url=final,
                status=FetchStatus.OK,
                reason=None,
                http_status=code,
                content=content,
                content_type=resp.headers.get("content-type"),
                etag=etag,
                last_modified=last_modified,
                retry_after_s=None,
                duration_s=0.0,
                attempts=0,
                error=None,
                max_age_s=max_age,
            )


def _header_safe(value: str) -> bool:
    return not any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value)


def _public(url: httpx.URL) -> str:
    return strip_userinfo(str(url))


def _transient(result: FetchResult) -> bool:
    if result.status is not FetchStatus.FAILED:
        return False
    if result.reason is Reason.DEFERRED:  # no room in this batch: the next run, not a retry
        return False
    return result.reason in RETRYABLE or result.http_status == 429


def _target(url: str) -> _Http | _File:
    """Decide how to read ``url``: over HTTP(S), or from a local path / file:// URL."""
    text = url.strip()
    if not text:
        raise _Failure(Reason.BAD_URL, "empty URL")
    if "\x00" in text:
        raise _Failure(Reason.BAD_URL, "NUL character in URL")
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError as exc:
        raise _Failure(Reason.BAD_URL, f"invalid URL: {exc}") from exc
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme in ("http", "https"):
        try:
            parsed = httpx.URL(text)
        except httpx.InvalidURL as exc:
            raise _Failure(Reason.BAD_URL, f"invalid URL: {exc}") from exc
        _check_http_url(parsed)
        return _Http(parsed)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise _Failure(Reason.BAD_URL, f"file URL on another host: {parts.netloc}")
        return _File(Path(url2pathname(parts.path)))
    if scheme and not Path(text).exists():  # "name:rest" that is not an existing local file
        raise _Failure(Reason.BAD_URL, f"unsupported scheme {scheme!r}")
    return _File(Path(text).expanduser())


def _redirect_target(url: httpx.URL, code: int, location: str | None) -> _Redirect:
    if not location:
        raise _Failure(Reason.BAD_URL, f"HTTP {code} without a Location", code)
    try:
        target = url.join(location.strip())
    except httpx.InvalidURL as exc:
        raise _Failure(Reason.BAD_URL, f"invalid redirect Location: {exc}", code) from exc
    if target.scheme not in ("http", "https"):
        scheme = target.scheme or "relative"
        raise _Failure(Reason.BAD_URL, f"redirect to a {scheme!r} URL refused", code)
    _check_http_url(target, "redirect to a URL", code)
    return _Redirect(str(target), code)


def _check_http_url(url: httpx.URL, what: str = "URL", http_status: int | None = None) -> None:
    if not url.host:
        raise _Failure(Reason.BAD_URL, f"{what} without a host", http_status)
    if url.port is not None and not 0 < url.port < 65536:
        raise _Failure(Reason.BAD_URL, f"{what} with port {url.port} out of range", http_status)


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes/contexts and the members of exception groups (bounded)."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 32:
        cur = stack.pop()
        if any(cur is s for s in seen):
            continue
        seen.append(cur)
        if isinstance(cur, BaseExceptionGroup):
            stack.extend(cur.exceptions)
        # both links: a library that re-raises with ``from None`` hides the OS error behind
        # __context__ with __suppress_context__ set
        for nxt in (cur.__cause__, cur.__context__):
            if nxt is not None:
                stack.append(nxt)
    return seen


def _classify(exc: BaseException, opts: FetchOptions) -> tuple[Reason, str]:
    """Map an aiohttp / OS exception to a Reason and a one-line message."""
    if isinstance(exc, aiohttp.ServerTimeoutError):
        kind = (
            "connect"
            if isinstance(exc, aiohttp.ConnectionTimeoutError)
            else "read"
            if isinstance(exc, aiohttp.SocketTimeoutError)
            else ""
        )
        return Reason.TIMEOUT, f"{kind} timeout after {opts.timeout_s:g}s".lstrip()
    if isinstance(exc, aiohttp.InvalidURL):
        return Reason.BAD_URL, _describe(exc)
    chain = _causes(exc)
    gai = next((e for e in chain if isinstance(e, socket.gaierror)), None)
    if gai is not None:
        return Reason.DNS, f"cannot resolve {_host(exc)} ({gai.strerror or gai})"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Reason.REFUSED, "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain):
        return Reason.TIMEOUT, _describe(exc)
    return Reason.CONNECTION, _describe(exc)


def _host(exc: BaseException) -> str:
    """The host a failed connection was for, or "the host" when it is not known."""
    host = getattr(exc, "host", None)
    return str(host) if host else "the host"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_MAX_AGE_RE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)


def _max_age(cache_control: str | None) -> float | None:
    """Seconds from ``Cache-Control: max-age=N`` (``no-cache``/``no-store`` mean none)."""
    if not cache_control:
        return None
    m = _MAX_AGE_RE.search(cache_control)
    return float(m.group(1)) if m else None
