"""The ``ingest`` Prefect flow: poll feeds -> fetch and extract new articles -> filter -> load.

Thin orchestration over ``extractors`` (the stages) and ``warehouse`` (DuckDB). Tasks are coarse
(one per stage per batch, never one per article) and take batches, so a distributed task runner
can spread them without changes. Every write is a short transaction on a short-lived connection.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.fetch import FetchOptions
from extractors.pipeline import (
    ArticleCandidate,
    ArticleRecord,
    FeedPoll,
    FeedTarget,
    batches,
    fetch_and_extract,
    filter_articles,
    poll_feeds,
)
from extractors.topics import TopicSet, load_topics
from newsmon.config import FeedConfig, Settings, load_feeds
from warehouse import loads
from warehouse.baseline import ensure_baseline
from warehouse.store import connect


@dataclass(frozen=True)
class FeedOutcome:
    name: str
    url: str
    status: str  # ok | not_modified | failed
    reason: str | None
    http_status: int | None
    error: str | None
    entries: int
    new: int


@dataclass(frozen=True)
class RelevantArticle:
    title: str
    url: str
    score: float


@dataclass
class RunSummary:
    run_id: str
    db_path: str
    feeds: list[FeedOutcome] = field(default_factory=list)
    articles_new: int = 0
    articles_retried: int = 0
    articles_failed: int = 0
    relevant: list[RelevantArticle] = field(default_factory=list)
    baseline_loaded: int = 0

    @property
    def feeds_failed(self) -> int:
        return sum(f.status == "failed" for f in self.feeds)


def fetch_options(settings: Settings) -> FetchOptions:
    return FetchOptions(
        timeout_s=settings.http_timeout_s,
        deadline_s=settings.http_deadline_s,
        max_bytes=settings.http_max_bytes,
        max_concurrency=settings.http_concurrency,
        per_host=settings.http_per_host,
        user_agent=settings.user_agent,
        retries=settings.http_retries,
    )


# --- tasks: one per stage per batch ----------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None


def _pool(workers: int) -> ProcessPoolExecutor | None:
    """One extraction pool per process, started on first use (forkserver: Prefect runs threads)."""
    global _POOL
    if workers <= 1:
        return None
    if _POOL is None:
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver"))
    return _POOL


def shutdown_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
        _POOL = None


@task(name="poll-feeds", cache_policy=NO_CACHE)
def poll_feeds_task(targets: Sequence[FeedTarget], options: FetchOptions) -> list[FeedPoll]:
    polls = poll_feeds(targets, options)
    get_run_logger().info(
        "polled %d feeds: %d ok, %d not modified, %d failed",
        len(polls),
        sum(p.status == "ok" for p in polls),
        sum(p.status == "not_modified" for p in polls),
        sum(p.status == "failed" for p in polls),
    )
    return polls


@task(name="fetch-extract", cache_policy=NO_CACHE)
def fetch_extract_task(
    candidates: Sequence[ArticleCandidate], options: FetchOptions, workers: int
) -> list[ArticleRecord]:
    records = fetch_and_extract(candidates, options, _pool(workers))
    get_run_logger().info(
        "fetched %d pages: %d extracted",
        len(records),
        sum(r.extraction_status == "extracted" for r in records),
    )
    return records


@task(name="filter", cache_policy=NO_CACHE)
def filter_task(records: Sequence[ArticleRecord], topics: TopicSet) -> list[ArticleRecord]:
    return filter_articles(records, topics)


@task(name="load", cache_policy=NO_CACHE)
def load_task(db_path: Path, records: Sequence[ArticleRecord]) -> int:
    with connect(db_path) as con:
        return loads.load_articles(con, records)


# --- the flow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestConfig:
    """Everything a run needs, validated before any work starts."""

    settings: Settings
    feeds: list[FeedConfig]
    topics: TopicSet


def load_config(
    db: str | os.PathLike[str] | None = None,
    feeds_file: str | os.PathLike[str] | None = None,
    topics_file: str | os.PathLike[str] | None = None,
) -> IngestConfig:
    """Read settings, feeds and topics; raise ConfigError on the first problem."""
    settings = Settings.from_env()
    settings = replace(
        settings,
        db_path=Path(db) if db else settings.db_path,
        feeds_path=Path(feeds_file) if feeds_file else settings.feeds_path,
        topics_path=Path(topics_file) if topics_file else settings.topics_path,
    )
    return IngestConfig(
        settings=settings,
        feeds=load_feeds(settings.feeds_path),
        topics=load_topics(settings.topics_path),
    )


@flow(name="ingest", log_prints=False)
def ingest(
    db: str | None = None, feeds_file: str | None = None, topics_file: str | None = None
) -> RunSummary:
    """Poll the feeds once and load what is new into the warehouse."""
    config = load_config(db, feeds_file, topics_file)
    settings = config.settings
    logger = get_run_logger()
    run_id = uuid.uuid4().hex[:12]
    summary = RunSummary(run_id=run_id, db_path=str(settings.db_path))
    options = fetch_options(settings)
    summary.baseline_loaded = ensure_baseline(settings.db_path, config.topics)

    with connect(settings.db_path) as con:
        targets = loads.register_feeds(con, config.feeds)
        loads.start_run(con, run_id, len(targets))

    polls = poll_feeds_task(targets, options)

    with connect(settings.db_path) as con:
        new_per_feed = loads.record_polls(con, run_id, polls)
        fresh = loads.pending_candidates(con)
        retries = loads.retry_candidates(con, settings.max_article_attempts)
    todo = [*fresh, *retries]
    logger.info("%d new articles, %d to retry", len(fresh), len(retries))

    try:
        for batch in batches(todo, settings.batch_size):
            records = fetch_extract_task(batch, options, settings.workers)
            records = filter_task(records, config.topics)
            load_task(settings.db_path, records)
            for r in records:
                if r.extraction_status == "failed":
                    summary.articles_failed += 1
                for m in r.matches:
                    if m.relevant:
                        summary.relevant.append(RelevantArticle(r.title or r.url, r.url, m.score))
    finally:
        shutdown_pool()

    summary.articles_new = len(fresh)
    summary.articles_retried = len(retries)
    by_id = {f.url: f for f in config.feeds}
    for poll in polls:
        feed = by_id[poll.target.url]
        summary.feeds.append(
            FeedOutcome(
                name=feed.name,
                url=feed.url,
                status=poll.status,
                reason=poll.reason.value if poll.reason else None,
                http_status=poll.fetch.http_status,
                error=poll.error,
                entries=len(poll.entries),
                new=new_per_feed.get(poll.target.feed_id, 0),
            )
        )
    with connect(settings.db_path) as con:
        loads.finish_run(
            con,
            run_id,
            feeds_ok=sum(f.status == "ok" for f in summary.feeds),
            feeds_not_modified=sum(f.status == "not_modified" for f in summary.feeds),
            feeds_failed=summary.feeds_failed,
            articles_new=summary.articles_new,
            articles_failed=summary.articles_failed,
            articles_relevant=len(summary.relevant),
        )
    summary.relevant.sort(key=lambda a: -a.score)
    return summary


__all__ = ["FeedOutcome", "IngestConfig", "RunSummary", "ingest", "load_config"]
