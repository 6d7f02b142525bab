"""The ingest stages as functions over batches: poll feeds, pick new articles, fetch and extract
them, filter them. Each takes and returns plain dataclasses, so a flow (or a Dask worker) can run
any of them on any batch; none touches the warehouse.
"""

from __future__ import annotations

import functools
import hashlib
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from newsmon.core.crashpoints import pause_point
from newsmon.extractors.articles import ExtractedArticle, ExtractionStatus, Page, extract_pages
from newsmon.extractors.feeds import MAX_ITEMS, ParsedEntry, ParsedFeed, parse_feed, valid_text
from newsmon.extractors.fetch import (
    FetchOptions,
    FetchRequest,
    FetchResult,
    FetchStatus,
    fetch_batch,
)
from newsmon.extractors.language import detect_language
from newsmon.extractors.reasons import RETRYABLE, Reason
from newsmon.extractors.topics import Document, EntityHit, FilterResult, TopicMatch, TopicSet
from newsmon.extractors.topics import filter_documents as _filter_documents
from newsmon.extractors.urls import canonical_url, content_hash, is_http_url


def stable_id(value: str) -> str:
    """A short, stable id for a URL: feeds and articles are keyed by their canonical URL."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:20]


# --- polling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedTarget:
    """A feed to poll, with the validators of its last successful fetch."""

    feed_id: str
    url: str
    language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    poll_interval_minutes: int | None = None  # configured in feeds.toml; else adaptive


@dataclass(frozen=True)
class FeedPoll:
    """What one poll of one feed gave: the fetch, and the parsed feed when there was one."""

    target: FeedTarget
    fetch: FetchResult
    feed: ParsedFeed | None

    @property
    def status(self) -> str:
        if self.fetch.status is FetchStatus.OK and self.feed is not None and not self.feed.ok:
            return "failed"
        return self.fetch.status.value

    @property
    def reason(self) -> Reason | None:
        """Why it failed; for an ok poll, ``too_many_items`` when the item limit applied."""
        if self.fetch.reason is not None:
            return self.fetch.reason
        if self.feed is not None and self.feed.ok and self.feed.entries_over_limit:
            return Reason.TOO_MANY_ITEMS
        return self.feed.reason if self.feed is not None and not self.feed.ok else None

    @property
    def error(self) -> str | None:
        if self.fetch.error:
            return self.fetch.error
        if self.feed is not None and not self.feed.ok:
            return self.feed.bozo_message or "no feed or entries found in the response"
        if self.feed is not None and self.feed.entries_over_limit:
            return (
                f"{self.feed.entries_over_limit} entries over the limit not read "
                "(NEWSMON_MAX_FEED_ITEMS)"
            )
        return None

    @property
    def entries(self) -> tuple[ParsedEntry, ...]:
        return self.feed.entries if self.feed is not None and self.feed.ok else ()


def _parse(result: FetchResult, max_items: int, max_bytes: int) -> ParsedFeed:
    return parse_feed(
        result.content,
        result.final_url,
        result.content_type,
        max_items=max_items,
        max_bytes=max_bytes,
    )


def poll_feeds(
    targets: Sequence[FeedTarget],
    options: FetchOptions,
    max_items: int = MAX_ITEMS,
    executor: Executor | None = None,
) -> list[FeedPoll]:
    """Fetch every feed concurrently (conditional GET) and parse what came back (at most
    ``max_items`` entries per feed).

    With an executor (a process pool) the feeds are parsed in parallel: feedparser takes 20-50 ms
    for a feed of 50 items, so parsing, not the network, is most of a poll.
    """
    requests = [FetchRequest(t.url, etag=t.etag, last_modified=t.last_modified) for t in targets]
    results = fetch_batch(requests, options)
    ok = [r for r in results if r.status is FetchStatus.OK]
    parse = functools.partial(_parse, max_items=max_items, max_bytes=options.max_bytes)
    parsed = iter(executor.map(parse, ok) if executor is not None else map(parse, ok))
    return [
        FeedPoll(
            target, replace(r, content=b""), next(parsed) if r.status is FetchStatus.OK else None
        )
        for target, r in zip(targets, results, strict=True)
    ]


# --- candidates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleCandidate:
    """An article to fetch: a new feed entry, or a page that failed before and may succeed now."""

    article_id: str
    canonical_url: str
    url: str
    feed_id: str | None
    guid: str | None
    title: str
    summary: str
    published_at: datetime | None
    language: str | None
    attempts: int = 0  # fetches already made

    @property
    def fetchable(self) -> bool:
        """Only http(s) article links are fetched: never a local file a feed points at."""
        return is_http_url(self.url)


def entry_key(feed_id: str, entry: ParsedEntry) -> str:
    """The canonical URL of an entry, or a stable stand-in for an entry with no usable link."""
    if entry.link:
        return canonical_url(entry.link)
    return f"urn:newsmon:entry:{feed_id}:{stable_id(entry.guid)}"


# --- fetch and extract --------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleRecord:
    """One article ready for the warehouse: page, extraction and filter results together."""

    article_id: str
    canonical_url: str
    url: str
    final_url: str | None
    feed_id: str | None
    guid: str | None
    title: str | None
    author: str | None
    published_at: datetime | None
    fetched_at: datetime | None
    language: str | None
    site_name: str | None
    description: str | None
    summary: str | None
    text: str | None
    extraction_status: str
    extraction_reason: str | None
    extraction_error: str | None
    fetch_attempts: int
    http_status: int | None
    content_hash: str | None
    is_baseline: bool = False
    detected_language: str | None = None  # from the text (extractors.language), set by filtering
    entities: tuple[EntityHit, ...] = field(default=(), compare=False)
    matches: tuple[TopicMatch, ...] = field(default=(), compare=False)
    vector: Any = field(default=None, compare=False)  # the text's embedding, when a model used it
    vector_key: str | None = field(default=None, compare=False)

    @property
    def retryable(self) -> bool:
        return self.extraction_reason in {r.value for r in RETRYABLE}

    def document(self) -> Document:
        return Document.of(self.title, self.text, self.summary)


def _valid(ex: ExtractedArticle) -> ExtractedArticle:
    """The page's strings as valid Unicode (see :func:`newsmon.extractors.feeds.valid_text`)."""

    def fix(v: str | None) -> str | None:
        return valid_text(v) if v is not None else None

    return replace(
        ex,
        title=fix(ex.title),
        text=fix(ex.text),
        author=fix(ex.author),
        site_name=fix(ex.site_name),
        description=fix(ex.description),
    )


def _record(
    cand: ArticleCandidate,
    fetch: FetchResult | None,
    extracted: ExtractedArticle | None,
    max_text_chars: int | None = None,
) -> ArticleRecord:
    now = datetime.now(UTC)
    status: str
    reason: str | None
    error: str | None
    if fetch is None:  # no usable link: keep what the feed said
        status, reason = ExtractionStatus.FAILED.value, Reason.BAD_URL.value
        error = "no usable link (none, or not http(s))"
    elif extracted is None:
        status = ExtractionStatus.FAILED.value
        reason = fetch.reason.value if fetch.reason else None
        error = fetch.error
    else:
        status = extracted.status.value
        reason = extracted.reason.value if extracted.reason else None
        error = extracted.error
    ex = extracted or ExtractedArticle(status=ExtractionStatus.FAILED)
    if max_text_chars is not None and ex.text is not None and len(ex.text) > max_text_chars:
        ex = replace(ex, text=ex.text[:max_text_chars])  # NEWSMON_MAX_TEXT_CHARS
    ex = _valid(ex)
    title = cand.title or ex.title
    body = ex.text or cand.summary or title or ""
    return ArticleRecord(
        article_id=cand.article_id,
        canonical_url=cand.canonical_url,
        url=cand.url,
        final_url=fetch.final_url if fetch else None,
        feed_id=cand.feed_id,
        guid=cand.guid,
        title=title or None,
        author=ex.author,
        published_at=cand.published_at or ex.published_at,
        fetched_at=now if fetch else None,
        language=ex.language or cand.language,
        site_name=ex.site_name,
        description=ex.description,
        summary=cand.summary or None,
        text=ex.text,
        extraction_status=status,
        extraction_reason=reason,
        extraction_error=error,
        # a page deferred for the batch's byte budget was not tried: it keeps its attempts
        fetch_attempts=cand.attempts + (1 if fetch and fetch.reason is not Reason.DEFERRED else 0),
        http_status=fetch.http_status if fetch else None,
        content_hash=content_hash(body) if body else None,
    )


@dataclass(frozen=True)
class FetchedPage:
    """A candidate and what fetching its page gave (``None``: no usable link, not fetched).

    The output of :func:`fetch_pages` and the input of :func:`extract_fetched`: two stages, so a
    flow can fetch one batch (I/O) while it extracts another (CPU).
    """

    candidate: ArticleCandidate
    fetch: FetchResult | None


def fetch_pages(candidates: Sequence[ArticleCandidate], options: FetchOptions) -> list[FetchedPage]:
    """Fetch the candidates' pages concurrently (only http(s) links), in order."""
    fetchable = [c for c in candidates if c.fetchable]
    results = iter(fetch_batch([FetchRequest(c.url) for c in fetchable], options))
    return [FetchedPage(c, next(results) if c.fetchable else None) for c in candidates]


def extract_fetched(
    fetched: Sequence[FetchedPage],
    executor: Executor | None = None,
    max_text_chars: int | None = None,
) -> list[ArticleRecord]:
    """Extract the pages that were fetched (in parallel with an executor), one record per
    candidate; keep at most ``max_text_chars`` of each text."""
    ok = [f for f in fetched if f.fetch is not None and f.fetch.status is FetchStatus.OK]
    pages = [Page(f.fetch.final_url, f.fetch.content, f.fetch.content_type) for f in ok if f.fetch]
    pause_point("extract")  # crash-test hook: the batch's pages fetched, not extracted yet
    extracted = dict(
        zip((f.candidate.article_id for f in ok), extract_pages(pages, executor), strict=True)
    )
    return [
        _record(f.candidate, f.fetch, extracted.get(f.candidate.article_id), max_text_chars)
        for f in fetched
    ]


# --- filter -------------------------------------------------------------------------------


def filter_articles(records: Sequence[ArticleRecord], topics: TopicSet) -> list[ArticleRecord]:
    """Attach entity mentions, one match per topic and the detected language to every record."""
    docs = [r.document() for r in records]
    results: list[FilterResult] = _filter_documents(docs, topics)
    return [
        replace(
            r,
            entities=res.entities,
            matches=res.matches,
            vector=res.vector,
            vector_key=res.vector_key,
            detected_language=detect_language(f"{d.title}\n{d.text}"),
        )
        for r, d, res in zip(records, docs, results, strict=True)
    ]


T = TypeVar("T")


def interleave_by_host(candidates: Sequence[ArticleCandidate]) -> list[ArticleCandidate]:
    """The same candidates, taken round-robin from their hosts (each host's own order kept).

    Fetches are limited per host (``FetchOptions.per_host``). In feed order, a batch is a few
    feeds' worth of one or two sites: it waits on them a few requests at a time while the rest
    of the allowed connections sit idle, and one slow site holds up whole batches. Spread over
    every host, a batch fetches at the total concurrency and a slow site delays only its slice.
    """
    queues: dict[str, deque[ArticleCandidate]] = {}
    for c in candidates:
        parts = urlsplit(c.url)
        queues.setdefault(f"{parts.scheme}://{parts.netloc.lower()}", deque()).append(c)
    out: list[ArticleCandidate] = []
    pending = list(queues.values())
    while pending:
        out.extend(q.popleft() for q in pending)
        pending = [q for q in pending if q]
    return out


def batches(items: Sequence[T], size: int, first: int | None = None) -> Iterable[Sequence[T]]:
    """Consecutive slices of ``size`` items; the first one has ``first`` items when given."""
    size = max(1, size)
    start = 0
    if first is not None and 0 < first < min(size, len(items)):
        yield items[:first]
        start = first
    for i in range(start, len(items), size):
        yield items[i : i + size]


__all__ = [
    "ArticleCandidate",
    "ArticleRecord",
    "FeedPoll",
    "FeedTarget",
    "FetchedPage",
    "batches",
    "entry_key",
    "extract_fetched",
    "fetch_pages",
    "filter_articles",
    "interleave_by_host",
    "poll_feeds",
    "stable_id",
]
