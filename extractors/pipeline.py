"""The ingest stages as functions over batches: poll feeds, pick new articles, fetch and extract
them, filter them. Each takes and returns plain dataclasses, so a flow (or a Dask worker) can run
any of them on any batch; none touches the warehouse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from extractors.articles import ExtractedArticle, ExtractionStatus, Page, extract_pages
from extractors.feeds import ParsedEntry, ParsedFeed, parse_feed
from extractors.fetch import FetchOptions, FetchRequest, FetchResult, FetchStatus, fetch_batch
from extractors.reasons import RETRYABLE, Reason
from extractors.topics import Document, EntityHit, FilterResult, TopicMatch, TopicSet
from extractors.language import detect_language
from extractors.topics import filter_documents as _filter_documents
from extractors.urls import canonical_url, content_hash, is_http_url


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
        if self.fetch.reason is not None:
            return self.fetch.reason
        return self.feed.reason if self.feed is not None and not self.feed.ok else None

    @property
    def error(self) -> str | None:
        if self.fetch.error:
            return self.fetch.error
        if self.feed is not None and not self.feed.ok:
            return self.feed.bozo_message or "no feed or entries found in the response"
        return None

    @property
    def entries(self) -> tuple[ParsedEntry, ...]:
        return self.feed.entries if self.feed is not None and self.feed.ok else ()


def poll_feeds(targets: Sequence[FeedTarget], options: FetchOptions) -> list[FeedPoll]:
    """Fetch every feed concurrently (conditional GET) and parse what came back."""
    requests = [FetchRequest(t.url, etag=t.etag, last_modified=t.last_modified) for t in targets]
    polls: list[FeedPoll] = []
    for target, result in zip(targets, fetch_batch(requests, options), strict=True):
        feed = None
        if result.status is FetchStatus.OK:
            feed = parse_feed(result.content, result.final_url, result.content_type)
        polls.append(FeedPoll(target, replace(result, content=b""), feed))
    return polls


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

    @property
    def retryable(self) -> bool:
        return self.extraction_reason in {r.value for r in RETRYABLE}

    def document(self) -> Document:
        return Document.of(self.title, self.text, self.summary)


def _record(
    cand: ArticleCandidate, fetch: FetchResult | None, extracted: ExtractedArticle | None
) -> ArticleRecord:
    now = datetime.now(UTC)
    status: str
    reason: str | None
    error: str | None
    if fetch is None:  # no usable link: keep what the feed said
        status, reason, error = ExtractionStatus.FAILED.value, Reason.BAD_URL.value, "no link"
    elif extracted is None:
        status = ExtractionStatus.FAILED.value
        reason = fetch.reason.value if fetch.reason else None
        error = fetch.error
    else:
        status = extracted.status.value
        reason = extracted.reason.value if extracted.reason else None
        error = extracted.error
    ex = extracted or ExtractedArticle(status=ExtractionStatus.FAILED)
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
        fetch_attempts=cand.attempts + (1 if fetch else 0),
        http_status=fetch.http_status if fetch else None,
        content_hash=content_hash(body) if body else None,
    )


def fetch_and_extract(
    candidates: Sequence[ArticleCandidate],
    options: FetchOptions,
    executor: Executor | None = None,
) -> list[ArticleRecord]:
    """Fetch the candidates' pages concurrently, extract them (in parallel with an executor)."""
    fetchable = [c for c in candidates if c.fetchable]
    results = fetch_batch([FetchRequest(c.url) for c in fetchable], options)
    fetched = dict(zip((c.article_id for c in fetchable), results, strict=True))
    ok = [(c, r) for c, r in zip(fetchable, results, strict=True) if r.status is FetchStatus.OK]
    pages = [Page(r.final_url, r.content, r.content_type) for _, r in ok]
    extracted = dict(
        zip((c.article_id for c, _ in ok), extract_pages(pages, executor), strict=True)
    )
    return [_record(c, fetched.get(c.article_id), extracted.get(c.article_id)) for c in candidates]


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
            detected_language=detect_language(f"{d.title}\n{d.text}"),
        )
        for r, d, res in zip(records, docs, results, strict=True)
    ]


T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


__all__ = [
    "ArticleCandidate",
    "ArticleRecord",
    "FeedPoll",
    "FeedTarget",
    "batches",
    "entry_key",
    "fetch_and_extract",
    "filter_articles",
    "poll_feeds",
    "stable_id",
]
