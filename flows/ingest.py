"""The ``ingest`` Prefect flow: poll feeds -> fetch and extract new articles -> filter -> load.

Thin orchestration over ``extractors`` (the stages) and ``warehouse`` (DuckDB). Tasks are coarse
(one per stage per batch, never one per article) and take batches, so a distributed task runner
can spread them without changes. Every write is a short transaction on a short-lived connection.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from newsmon.core.errors import ConfigError
from newsmon.core.locks import exclusive, lock_path
from newsmon.core.progress import advance, stored
from newsmon.core.settings import FeedConfig, Settings, load_feeds
from newsmon.extractors.fetch import FetchOptions
from newsmon.extractors.pipeline import (
    ArticleCandidate,
    ArticleRecord,
    FeedPoll,
    FeedTarget,
    interleave_by_host,
    poll_feeds,
)
from newsmon.extractors.schedule import ScheduleRules
from newsmon.extractors.shards import Shard
from newsmon.extractors.stories import StoryParams
from newsmon.extractors.topics import TopicSet, load_topics
from newsmon.extractors.urls import strip_userinfo
from newsmon.flows.batches import (
    BatchSettings,
    dask_runner,
    extraction_pool,
    run_batches,
    run_batches_distributed,
    shutdown_pool,
    start_pool,
)
from newsmon.flows.derived import refresh_derived_task
from newsmon.warehouse import loads
from newsmon.warehouse import polls as polls_sql
from newsmon.warehouse.baseline import ensure_baseline
from newsmon.warehouse.digests import failing_feeds
from newsmon.warehouse.store import connect, now_utc


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
    next_poll_at: datetime | None = None


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
    feeds_not_due: int = 0  # with only_due: feeds whose next poll time had not come
    failing_for_a_day: list[str] = field(default_factory=list)  # "name (reason, N polls)"
    skipped: bool = False  # another ingest held the warehouse
    # seconds each stage was running (poll, fetch, extract, filter, load, derived, warehouse,
    # flow); the batch stages overlap, so they add up to more than the flow's wall time
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def feeds_failed(self) -> int:
        return sum(f.status == "failed" for f in self.feeds)


# --- tasks: polling here, one per stage per batch in flows/batches.py -----------------------


@task(name="poll-feeds", cache_policy=NO_CACHE)
def poll_feeds_task(
    targets: Sequence[FeedTarget], options: FetchOptions, max_items: int, workers: int
) -> list[FeedPoll]:
    polls = poll_feeds(targets, options, max_items, extraction_pool(workers))
    get_run_logger().info(
        "polled %d feeds: %d ok, %d not modified, %d failed",
        len(polls),
        sum(p.status == "ok" for p in polls),
        sum(p.status == "not_modified" for p in polls),
        sum(p.status == "failed" for p in polls),
    )
    return polls


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
    settings: Settings | None = None,
) -> IngestConfig:
    """Read settings (unless given), feeds and topics; raise ConfigError on the first problem."""
    settings = settings or Settings.from_env()
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


def parse_shard(text: str) -> Shard:
    """The ``shard`` parameter ("INDEX/COUNT"), or a ConfigError naming it and the fix."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise ConfigError(
            "ingest parameters",
            "shard",
            str(exc),
            "pass INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 1/2 (the whole list: 1/1)",
        ) from None


@flow(name="ingest", log_prints=False)
def ingest(
    db: str | None = None,
    feeds_file: str | None = None,
    topics_file: str | None = None,
    only_due: bool = False,
    shard: str = "1/1",
    poll_ceiling_s: float | None = None,
    alerts_file: str | None = None,
) -> RunSummary:
    """Poll the feeds once (with ``only_due``, those whose next poll time has come; with
    ``shard`` "I/N", those of the I-th of N shards: extractors/shards.py) and load what is new
    into the warehouse. Two ingests of one shard never write one warehouse at once: a second
    one waits up to ``NEWSMON_INGEST_LOCK_WAIT`` seconds, then does nothing and says so.

    ``serve`` passes the other two while an ``immediate`` subscription exists: no feed waits
    longer than ``poll_ceiling_s`` between polls (extractors/schedule.py), and a run that stored
    relevant articles sends the digests that are due (``alerts_file``) at once, instead of on
    the digest deployment's next tick."""
    part = parse_shard(shard)
    config = load_config(db, feeds_file, topics_file)
    settings = config.settings
    logger = get_run_logger()
    with exclusive(
        lock_path(settings.db_path, part.lock_name), wait_s=settings.ingest_lock_wait_s
    ) as held:
        if not held:
            logger.warning(
                "another ingest of shard %s is running on %s: this one did nothing",
                part,
                settings.db_path,
            )
            return RunSummary(run_id="", db_path=str(settings.db_path), skipped=True)
        summary = _ingest(config, only_due, part, poll_ceiling_s)
    _publish_artifact(summary)
    if alerts_file and summary.relevant:
        from newsmon.flows.digest import digest

        digest(
            db=str(settings.db_path),
            alerts_file=alerts_file,
            topics_file=str(settings.topics_path),
        )
    return summary


def _ingest(
    config: IngestConfig, only_due: bool, shard: Shard, poll_ceiling_s: float | None = None
) -> RunSummary:
    started = time.perf_counter()
    settings = config.settings
    logger = get_run_logger()
    run_id = uuid.uuid4().hex[:12]
    summary = RunSummary(run_id=run_id, db_path=str(settings.db_path))
    options = FetchOptions.of(settings)
    start_pool(settings.local_workers)  # the workers start while the feeds are polled
    try:
        summary.baseline_loaded = ensure_baseline(settings.db_path, config.topics)
        feeds = [f for f in config.feeds if shard.holds(polls_sql.feed_id_for(f.url))]
        # a shard fetches only the articles its own feeds saw first (None: every article)
        own = None if shard.whole else [polls_sql.feed_id_for(f.url) for f in feeds]
        with connect(settings.db_path) as con:
            targets = polls_sql.register_feeds(con, feeds)
            if only_due:
                ceiling = timedelta(seconds=poll_ceiling_s) if poll_ceiling_s else None
                targets = polls_sql.due_targets(con, targets, now_utc(), ceiling)
            polls_sql.start_run(con, run_id, len(targets))
        summary.feeds_not_due = len(feeds) - len(targets)

        poll_started = time.perf_counter()
        polls = poll_feeds_task(targets, options, settings.max_feed_items, settings.local_workers)
        poll_s = time.perf_counter() - poll_started

        with connect(settings.db_path) as con:
            new_per_feed = polls_sql.record_polls(
                con, run_id, polls, ScheduleRules.of(settings, poll_ceiling_s)
            )
            fresh = loads.pending_candidates(con, own)
            retries = loads.retry_candidates(con, settings.max_article_attempts, own)
        todo = interleave_by_host([*fresh, *retries])  # each batch spread over every site
        logger.info("%d new articles, %d to retry", len(fresh), len(retries))

        batches_started = time.perf_counter()
        batch_settings = BatchSettings(
            db_path=settings.db_path,
            options=options,
            topics=config.topics,
            batch_size=settings.batch_size,
            workers=settings.local_workers,
            max_text_chars=settings.max_text_chars,
            stories=StoryParams(window=timedelta(days=settings.story_window_days)),
        )
        stages = _run_batches(todo, batch_settings, settings, summary)
        batches_s = time.perf_counter() - batches_started
    finally:
        shutdown_pool()

    # issue 8: cluster the new articles into stories, rebuild the search index (flows/derived.py)
    derived_started = time.perf_counter()
    refresh_derived_task(settings.db_path, settings.story_window_days)
    derived_s = time.perf_counter() - derived_started

    summary.articles_new = len(fresh)
    summary.articles_retried = len(retries)
    by_id = {f.url: f for f in config.feeds}
    shown_urls = {strip_userinfo(f.url) for f in feeds}
    with connect(settings.db_path) as con:  # one connection for the run's closing reads and write
        summary.failing_for_a_day = [
            f"{f.name} ({f.reason or 'failing'}, {f.error_streak} failed polls)"
            for f in failing_feeds(con, now_utc())
            if f.url in shown_urls  # this shard's
        ]
        next_polls = polls_sql.next_poll_times(con, [p.target.feed_id for p in polls])
        for poll in polls:
            feed = by_id[poll.target.url]
            summary.feeds.append(
                FeedOutcome(
                    name=feed.name,
                    url=strip_userinfo(feed.url),
                    status=poll.status,
                    reason=poll.reason.value if poll.reason else None,
                    http_status=poll.fetch.http_status,
                    error=poll.error,
                    entries=len(poll.entries),
                    new=new_per_feed.get(poll.target.feed_id, 0),
                    next_poll_at=next_polls.get(poll.target.feed_id),
                )
            )
        polls_sql.finish_run(
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
    flow_s = time.perf_counter() - started
    summary.stage_seconds = {
        "poll": round(poll_s, 3),
        **stages,
        "derived": round(derived_s, 3),  # stories and the search index
        # baseline, feeds, queue, run rows
        "warehouse": round(flow_s - poll_s - batches_s - derived_s, 3),
        "flow": round(flow_s, 3),
    }
    return summary


def _run_batches(
    todo: Sequence[ArticleCandidate],
    batch_settings: BatchSettings,
    settings: Settings,
    summary: RunSummary,
) -> dict[str, float]:
    """The batches, on this machine or (NEWSMON_TASK_RUNNER=dask) on a Dask cluster, started
    only when there is something to do."""

    def on_loaded(records: Sequence[ArticleRecord]) -> None:
        _tally(summary, records, len(todo))

    if settings.task_runner != "dask" or not todo:
        return run_batches(todo, batch_settings, on_loaded)
    with dask_runner(settings.dask_address, settings.workers) as (runner, at_once):
        get_run_logger().info("%d batches at once on the Dask cluster", at_once)
        return run_batches_distributed(todo, batch_settings, runner, on_loaded, at_once)


def summary_markdown(summary: RunSummary) -> str:
    """The run as a Prefect markdown artifact: feeds, new and relevant articles."""
    lines = [
        f"# Ingest run {summary.run_id}",
        "",
        f"{len(summary.feeds)} feeds polled ({summary.feeds_not_due} not due), "
        f"{summary.articles_new} new articles, {len(summary.relevant)} relevant, "
        f"{summary.feeds_failed} feeds failed.",
        "",
        "| feed | status | entries | new | next poll (UTC) | problem |",
        "|---|---|---|---|---|---|",
    ]
    for f in summary.feeds:
        problem = f"{f.reason}: {f.error}" if f.reason else ""
        when = f.next_poll_at.strftime("%Y-%m-%d %H:%M") if f.next_poll_at else ""
        cells = [f.name, f.status, str(f.entries), str(f.new), when, problem]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    if summary.failing_for_a_day:
        lines += ["", "## Failing for a day or more", ""]
        lines += [f"- {name}" for name in summary.failing_for_a_day]
    if summary.relevant:
        lines += ["", "## Relevant", ""]
        lines += [f"- {a.score:.2f} [{a.title}]({a.url})" for a in summary.relevant[:50]]
    return "\n".join(lines)


def _publish_artifact(summary: RunSummary) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=summary_markdown(summary),
        key="ingest-summary",
        description=f"newsmon ingest {summary.run_id}",
    )


def _tally(summary: RunSummary, records: Sequence[ArticleRecord], total: int) -> None:
    """Count a loaded batch's failed pages and note its relevant articles in the summary."""
    advance(len(records), total)
    stored(len(records))
    for r in records:
        if r.extraction_status == "failed":
            summary.articles_failed += 1
        for m in r.matches:
            if m.relevant:
                summary.relevant.append(RelevantArticle(r.title or r.url, r.url, m.score))


__all__ = ["FeedOutcome", "IngestConfig", "RunSummary", "ingest", "load_config", "parse_shard"]
