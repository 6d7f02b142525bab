"""What a fetch takes and gives back, shared by ``newsmon.extractors.fetch`` (the client) and
``newsmon.extractors.fetchbody`` (reading a body within its limit).

``FetchOptions`` holds the limits (what each one guarantees: ``newsmon.extractors.fetch``) and the
run's ``HostCircuit``; ``FetchRequest`` is one URL with its validators; ``FetchResult`` is the
answer, ``ok``, ``not_modified`` or ``failed`` (``FetchStatus``). ``_Failure`` is a classified
failure raised inside one attempt; ``_failed`` turns it into a result whose ``error`` is one
bounded line that never shows ``user:password@`` (``_redact``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from newsmon.core.settings import Settings
from newsmon.extractors.netguard import AddressPolicy
from newsmon.extractors.reasons import Reason

__all__ = [
    "FetchOptions",
    "FetchRequest",
    "FetchResult",
    "FetchStatus",
    "HostCircuit",
]

_ERROR_MAX_CHARS = 300


class HostCircuit:
    """Open circuits by host (``scheme://host:port``): a dead host costs one failure per run,
    not one per article with back-off each time (306 pages on unresolvable hosts took 52 s).

    Opened by a DNS failure, a refused connection or a connect timeout, at the first try
    (``newsmon.extractors.fetch``): the host's requests (that one's retries included) then fail
    with the same reason, retryable by the next run.
    A plain dict: its operations are atomic in CPython, and it pickles with the options.
    """

    def __init__(self) -> None:
        self.open: dict[str, FetchResult] = {}

    def trip(self, key: str, result: FetchResult) -> None:
        self.open.setdefault(key, result)

    def tripped(self, key: str) -> FetchResult | None:
        return self.open.get(key)


@dataclass(frozen=True)
class FetchOptions:
    timeout_s: float = 10.0  # connect/read timeout
    deadline_s: float = 30.0  # total time for one attempt incl. redirects and body
    max_bytes: int = 10_000_000  # decoded body
    batch_max_bytes: int = 200_000_000  # bodies one fetch_all call holds at once (deferred past it)
    max_concurrency: int = 32
    per_host: int = 4
    user_agent: str = "newsmon/0.1 (+https://example.org/newsmon)"
    retries: int = 2  # extra attempts for transient failures
    backoff_s: float = 0.5  # first backoff; doubles each retry, with jitter (x0.5..1.0)
    max_redirects: int = 5
    max_retry_after_s: float = 30.0  # honour Retry-After up to this; longer: give up, report it
    trust_env: bool = True  # honour HTTP(S)_PROXY / ALL_PROXY / NO_PROXY / SSL_CERT_FILE
    addresses: AddressPolicy = field(default_factory=AddressPolicy)  # default: public only
    # hosts that did not resolve or refused to connect, shared by every batch that uses these
    # options (one run): their other URLs fail at once, retryable, without a request
    circuit: HostCircuit = field(default_factory=lambda: HostCircuit(), compare=False)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.per_host < 1:
            raise ValueError("max_concurrency and per_host must be at least 1")
        if self.retries < 0 or self.max_redirects < 0 or self.max_bytes < 0:
            raise ValueError("retries, max_redirects and max_bytes must not be negative")
        if self.timeout_s <= 0 or self.deadline_s <= 0:
            raise ValueError("timeout_s and deadline_s must be positive")

    @classmethod
    def of(cls, settings: Settings) -> FetchOptions:
        """The options ``settings`` describe, for one run (a new host circuit)."""
        return cls(
            timeout_s=settings.http_timeout_s,
            deadline_s=settings.http_deadline_s,
            max_bytes=settings.http_max_bytes,
            batch_max_bytes=settings.http_batch_max_bytes,
            max_concurrency=settings.http_concurrency,
            per_host=settings.http_per_host,
            user_agent=settings.user_agent,
            retries=settings.http_retries,
            max_redirects=settings.http_max_redirects,
            addresses=AddressPolicy.of(settings),
        )


@dataclass(frozen=True)
class FetchRequest:
    url: str
    etag: str | None = None  # sent as If-None-Match
    last_modified: str | None = None  # sent as If-Modified-Since


class FetchStatus(StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"


@dataclass(frozen=True)
class FetchResult:
    url: str  # as requested
    final_url: str  # after redirects
    status: FetchStatus
    reason: Reason | None  # set when FAILED
    http_status: int | None
    content: bytes  # b"" unless OK
    content_type: str | None
    etag: str | None
    last_modified: str | None
    retry_after_s: float | None  # from a 429/503 Retry-After, for the scheduler
    duration_s: float
    attempts: int
    error: str | None  # one-line human detail (never includes credentials)
    max_age_s: float | None = None  # Cache-Control max-age (or s-maxage) of an ok/304 response

    @property
    def ok(self) -> bool:
        return self.status is FetchStatus.OK


class _Failure(Exception):
    """A classified failure raised inside one attempt and turned into a FetchResult."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def _redact(text: str) -> str:
    """One line, no user:password@ parts, bounded length."""
    line = " ".join(_USERINFO.sub(r"\1***@", text).split())
    return line if len(line) <= _ERROR_MAX_CHARS else line[: _ERROR_MAX_CHARS - 1] + "…"


def _failed(
    url: str,
    final_url: str,
    reason: Reason,
    message: str,
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> FetchResult:
    return FetchResult(
        url=url,
        final_url=final_url,
        status=FetchStatus.FAILED,
        reason=reason,
        http_status=http_status,
        content=b"",
        content_type=None,
        etag=None,
        last_modified=None,
        retry_after_s=retry_after_s,
        duration_s=0.0,
        attempts=0,
        error=_redact(message),
    )
