"""The warehouse's side of ingest: feeds and their state, runs, polls, articles and matches.

Every write takes a whole batch and runs in one transaction; every write is idempotent (keys
are stable hashes of URLs, so re-loading a batch after a crash replaces rather than duplicates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb

from newsmon.core.crashpoints import pause_point
from newsmon.core.settings import FeedConfig
from newsmon.extractors.embedding import ENCODER, to_blob
from newsmon.extractors.pipeline import (
    ArticleCandidate,
    ArticleRecord,
    FeedPoll,
    FeedTarget,
    entry_key,
    stable_id,
)
from newsmon.extractors.reasons import RETRYABLE
from newsmon.extractors.schedule import (
    FeedSchedule,
    NextPoll,
    PollOutcome,
    ScheduleRules,
    is_due,
    next_poll,
)
from newsmon.extractors.topics import FilterResult, TopicMatch
from newsmon.extractors.urls import strip_userinfo
from newsmon.warehouse.search import index_articles
from newsmon.warehouse.store import (
    among,
    batch_view,
    bulk_insert,
    field_names,
    keys,
    now_utc,
    retry_conflicts,
    transaction,
)

# --- feeds --------------------------------------------------------------------------------

DEFAULT_RULES = ScheduleRules()  # the defaults of newsmon.core.settings.Settings


@dataclass(frozen=True)
class FeedRow:
    feed_id: str
    name: str
    url: str
    tags: list[str]
    language: str | None
    poll_interval_minutes: int | None
    added_at: datetime


def feed_id_for(url: str) -> str:
    return stable_id(url)


@retry_conflicts
def register_feeds(con: duckdb.DuckDBPyConnection, feeds: Sequence[FeedConfig]) -> list[FeedTarget]:
    """Upsert the configured feeds; return them as poll targets with their stored validators."""
    rows = [
        FeedRow(
            feed_id=feed_id_for(f.url),
            name=f.name,
            url=strip_userinfo(f.url),  # credentials stay in feeds.toml, never in the warehouse
            tags=list(f.tags),
            language=f.language,
            poll_interval_minutes=f.poll_interval_minutes,
            added_at=now_utc(),
        )
        for f in feeds
    ]
    ids = keys(r.feed_id for r in rows)
    # write only the feeds that are new or whose feeds.toml entry changed: rewriting every
    # feed on every run took 20 s at 180,000 feeds (docs/scaling.md)
    configured = {
        row[0]: tuple(row[1:])
        for row in con.execute(
            "SELECT feed_id, name, tags, language, poll_interval_minutes FROM feeds "
            f"WHERE {among('feed_id')}",
            [ids],
        ).fetchall()
    }
    changed = [
        r
        for r in rows
        if configured.get(r.feed_id) != (r.name, r.tags, r.language, r.poll_interval_minutes)
    ]
    if changed:
        with transaction(con):
            bulk_insert(
                con,
                "feeds",
                changed,
                key=("feed_id",),
                update=True,
                keep=("url", "added_at"),
            )
    stored = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT feed_id, etag, last_modified FROM feeds WHERE {among('feed_id')}", [ids]
        ).fetchall()
    }
    return [
        FeedTarget(
            feed_id=r.feed_id,
            url=f.url,
            language=r.language,
            etag=stored.get(r.feed_id, (None, None))[0],
            last_modified=stored.get(r.feed_id, (None, None))[1],
            poll_interval_minutes=f.poll_interval_minutes,
        )
        for r, f in zip(rows, feeds, strict=True)
    ]


def due_targets(
    con: duckdb.DuckDBPyConnection, targets: Sequence[FeedTarget], now: datetime
) -> list[FeedTarget]:
    """The targets whose next poll time has come (or that were never polled)."""
    scheduled = dict(
        con.execute(
            f"SELECT feed_id, next_poll_at FROM feeds WHERE {among('feed_id')}",
            [keys(t.feed_id for t in targets)],
        ).fetchall()
    )
    return [t for t in targets if is_due(scheduled.get(t.feed_id), now)]


# --- runs ---------------------------------------------------------------------------------


@retry_conflicts
def start_run(con: duckdb.DuckDBPyConnection, run_id: str, feeds_total: int) -> None:
    with transaction(con):  # (a transaction, for the write turn on a DuckLake)
        con.execute(
            "INSERT INTO runs (run_id, started_at, feeds_total) SELECT $run, $now, $feeds "
            "WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = $run)",
            {"run": run_id, "now": now_utc(), "feeds": feeds_total},
        )


@retry_conflicts
def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    feeds_ok: int,
    feeds_not_modified: int,
    feeds_failed: int,
    articles_new: int,
    articles_failed: int,
    articles_relevant: int,
) -> None:
    with transaction(con):
        con.execute(
            """
            UPDATE runs SET finished_at = ?, feeds_ok = ?, feeds_not_modified = ?, feeds_failed = ?,
                   articles_new = ?, articles_failed = ?, articles_relevant = ?
            WHERE run_id = ?
            """,
            [
                now_utc(),
                feeds_ok,
                feeds_not_modified,
                feeds_failed,
                articles_new,
                articles_failed,
                articles_relevant,
                run_id,
            ],
        )


# --- polls --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedFetchRow:
    run_id: str
    feed_id: str
    fetched_at: datetime
    status: str
    http_status: int | None
    reason: str | None
    error: str | None
    duration_ms: int
    bozo: bool | None
    entries_seen: int
    entries_new: int


@dataclass(frozen=True)
class FeedItemRow:
    feed_id: str
    guid: str
    article_id: str
    canonical_url: str
    link: str | None
    title: str | None
    summary: str | None
    published_at: datetime | None
    first_seen_at: datetime
    seen_order: int


@retry_conflicts
def record_polls(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    polls: Sequence[FeedPoll],
    rules: ScheduleRules = DEFAULT_RULES,
) -> dict[str, int]:
    """Record one poll per feed, its new entries and the feed's state; return new per feed.

    New entries land in ``feed_items`` in the same transaction as the feed's new validators, so
    they are the work queue: an entry whose article is not stored yet is fetched by this run or,
    after a crash, by the next (see :func:`pending_candidates`), even if the feed then says 304.
    """
    now = now_utc()
    items = [
        FeedItemRow(
            feed_id=p.target.feed_id,
            guid=e.guid,
            article_id=stable_id(key),
            canonical_url=key,
            link=e.link,
            title=e.title or None,
            summary=e.summary or None,
            published_at=e.published_at,
            first_seen_at=now,
            seen_order=0,
        )
        for p in polls
        for e in p.entries
        for key in (entry_key(p.target.feed_id, e),)
    ]
    # read what is known inside the transaction: on a DuckLake the write turn it takes
    # conflicts with any commit made since it began, never with one made before
    with transaction(con):
        known = {
            (r[0], r[1])
            for r in con.execute(
                f"SELECT feed_id, guid FROM feed_items WHERE {among('feed_id')}",
                [keys(p.target.feed_id for p in polls)],
            ).fetchall()
        }
        fresh: dict[tuple[str, str], FeedItemRow] = {}
        for item in items:
            key = (item.feed_id, item.guid)
            if key not in known and key not in fresh:
                fresh[key] = replace(item, seen_order=len(fresh))
        new_per_feed: dict[str, int] = {}
        for feed_id, _ in fresh:
            new_per_feed[feed_id] = new_per_feed.get(feed_id, 0) + 1
        fetch_rows = [
            FeedFetchRow(
                run_id=run_id,
                feed_id=p.target.feed_id,
                fetched_at=now,
                status=p.status,
                http_status=p.fetch.http_status,
                reason=p.reason.value if p.reason else None,
                error=(p.error or "")[:500] or None,
                duration_ms=round(p.fetch.duration_s * 1000),
                bozo=p.feed.bozo if p.feed is not None else None,
                entries_seen=len(p.entries),
                entries_new=new_per_feed.get(p.target.feed_id, 0),
            )
            for p in polls
        ]
        bulk_insert(
            con,
            "feed_fetches",
            fetch_rows,
            key=("run_id", "feed_id"),
        )
        bulk_insert(con, "feed_items", list(fresh.values()), key=("feed_id", "guid"))
        _update_feed_states(con, polls, now, _schedules(con, polls, new_per_feed, now, rules))
    return new_per_feed


@dataclass(frozen=True)
class FeedStateRow:
    """What one poll changes in ``feeds`` (applied to every feed in one UPDATE)."""

    feed_id: str
    polled_at: datetime
    status: str
    reason: str | None
    etag: str | None
    last_modified: str | None
    title: str | None
    site_url: str | None
    format: str | None
    next_poll_at: datetime
    rate_per_hour: float | None
    schedule_reason: str


def _schedules(
    con: duckdb.DuckDBPyConnection,
    polls: Sequence[FeedPoll],
    new_per_feed: dict[str, int],
    now: datetime,
    rules: ScheduleRules,
) -> dict[str, NextPoll]:
    """Each polled feed's next poll time, from its stored state and this poll's outcome."""
    state = {
        r[0]: FeedSchedule(r[1], r[2], r[3])
        for r in con.execute(
            f"""
            SELECT feed_id, rate_per_hour, last_polled_at, error_streak FROM feeds
            WHERE {among("feed_id")}
            """,
            [keys(p.target.feed_id for p in polls)],
        ).fetchall()
    }
    out: dict[str, NextPoll] = {}
    for p in polls:
        fid = p.target.feed_id
        outcome = PollOutcome(
            polled_at=now,
            ok=p.status != "failed",
            entries=len(p.entries),
            new=new_per_feed.get(fid, 0),
            reason=p.reason.value if p.reason else None,
            http_status=p.fetch.http_status,
            ttl_minutes=p.feed.ttl_minutes if p.feed is not None else None,
            max_age_s=p.fetch.max_age_s,
            retry_after_s=p.fetch.retry_after_s,
            configured_minutes=p.target.poll_interval_minutes,
        )
        out[fid] = next_poll(state.get(fid, FeedSchedule()), outcome, rules)
    return out


def _update_feed_states(
    con: duckdb.DuckDBPyConnection,
    polls: Sequence[FeedPoll],
    now: datetime,
    schedules: dict[str, NextPoll],
) -> None:
    """Record each feed's poll: status and error streak; validators and title when ok; when to
    poll it next."""
    if not polls:
        return
    rows = [
        FeedStateRow(
            feed_id=p.target.feed_id,
            polled_at=now,
            status=p.status,
            reason=p.reason.value if p.reason else None,
            etag=p.fetch.etag,
            last_modified=p.fetch.last_modified,
            title=(p.feed.title or None) if p.feed is not None else None,
            site_url=p.feed.link if p.feed is not None else None,
            format=(p.feed.format or None) if p.feed is not None else None,
            next_poll_at=schedules[p.target.feed_id].at,
            rate_per_hour=schedules[p.target.feed_id].rate_per_hour,
            schedule_reason=schedules[p.target.feed_id].why,
        )
        for p in polls
    ]
    with batch_view(con, "_batch_feed_states", rows) as (view, _):
        con.execute(
            f"""
            UPDATE feeds SET
                last_polled_at = b.polled_at,
                last_status = b.status,
                last_reason = b.reason,
                error_streak = CASE WHEN b.status = 'failed' THEN feeds.error_streak + 1 ELSE 0 END,
                last_success_at = CASE WHEN b.status = 'failed'
                                       THEN feeds.last_success_at ELSE b.polled_at END,
                etag = CASE WHEN b.status = 'ok' THEN b.etag ELSE feeds.etag END,
                last_modified = CASE WHEN b.status = 'ok'
                                     THEN b.last_modified ELSE feeds.last_modified END,
                title = CASE WHEN b.status = 'ok' THEN b.title ELSE feeds.title END,
                site_url = CASE WHEN b.status = 'ok' THEN b.site_url ELSE feeds.site_url END,
                format = CASE WHEN b.status = 'ok' THEN b.format ELSE feeds.format END,
                next_poll_at = b.next_poll_at,
                rate_per_hour = b.rate_per_hour,
                schedule_reason = b.schedule_reason
            FROM {view} AS b
            WHERE feeds.feed_id = b.feed_id
            """
        )


# --- articles -----------------------------------------------------------------------------


def _candidates(rows: list[tuple[Any, ...]]) -> list[ArticleCandidate]:
    """Rows of (article_id, canonical_url, url, feed_id, guid, title, summary, published_at,
    language, attempts) as candidates."""
    return [
        ArticleCandidate(
            article_id=r[0],
            canonical_url=r[1],
            url=r[2],
            feed_id=r[3],
            guid=r[4],
            title=r[5] or "",
            summary=r[6] or "",
            published_at=r[7],
            language=r[8],
            attempts=r[9],
        )
        for r in rows
    ]


def pending_candidates(
    con: duckdb.DuckDBPyConnection, feed_ids: Sequence[str] | None = None
) -> list[ArticleCandidate]:
    """Feed entries whose article is not stored yet, once per article (the first sighting).

    With ``feed_ids`` (a shard's feeds: extractors/shards.py), only the articles whose first
    sighting was in one of them: an article in feeds of two shards is fetched by one of them.
    """
    rows = con.execute(
        f"""
        SELECT * FROM (
            SELECT i.article_id, i.canonical_url, coalesce(i.link, i.canonical_url), i.feed_id,
                   i.guid, i.title, i.summary, i.published_at, f.language, 0,
                   i.first_seen_at, i.seen_order
            FROM feed_items i JOIN feeds f USING (feed_id)
            WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.article_id = i.article_id)
            QUALIFY row_number() OVER (
                PARTITION BY i.article_id ORDER BY i.first_seen_at, i.seen_order) = 1
        ) AS first_sighting
        WHERE {"true" if feed_ids is None else among("feed_id")}
        ORDER BY first_seen_at, seen_order
        """,
        [] if feed_ids is None else [keys(feed_ids)],
    ).fetchall()
    return _candidates(rows)


def retry_candidates(
    con: duckdb.DuckDBPyConnection, max_attempts: int, feed_ids: Sequence[str] | None = None
) -> list[ArticleCandidate]:
    """Articles whose page failed for a transient reason and may succeed now (with
    ``feed_ids``: those first seen in one of these feeds)."""
    rows = con.execute(
        f"""
        SELECT a.article_id, a.canonical_url, a.url, a.feed_id, a.guid, a.title, a.summary,
               a.published_at, coalesce(a.language, f.language), a.fetch_attempts
        FROM articles a LEFT JOIN feeds f USING (feed_id)
        WHERE a.extraction_status = 'failed' AND list_contains(?, a.extraction_reason)
          AND a.fetch_attempts < ? AND NOT a.is_baseline
          AND {"true" if feed_ids is None else among("a.feed_id")}
        ORDER BY a.first_seen_at
        """,
        [sorted(r.value for r in RETRYABLE), max_attempts]
        + ([] if feed_ids is None else [keys(feed_ids)]),
    ).fetchall()
    return _candidates(rows)


@dataclass(frozen=True)
class EntityRow:
    article_id: str
    entity_id: str
    name: str
    type: str
    count: int
    first_pos: int
    in_title: bool


@dataclass(frozen=True)
class MatchRow:
    article_id: str
    topic: str
    score: float
    relevant: bool
    explanation: dict[str, object]
    matched_at: datetime
    model_version: str | None = None

    @classmethod
    def of(cls, article_id: str, m: TopicMatch, at: datetime) -> MatchRow:
        model = m.explanation.get("model") or {}
        return cls(
            article_id, m.topic, m.score, m.relevant, m.explanation, at, model.get("version")
        )


@dataclass(frozen=True)
class EmbeddingRow:
    article_id: str
    encoder: str
    text_key: str
    vector: bytes
    embedded_at: datetime


def embedding_rows(
    pairs: Iterable[tuple[str, FilterResult | ArticleRecord]], at: datetime
) -> list[EmbeddingRow]:
    """Rows for ``article_embeddings`` from whatever carries a computed vector."""
    return [
        EmbeddingRow(aid, ENCODER, r.vector_key, to_blob(r.vector), at)
        for aid, r in pairs
        if r.vector is not None and r.vector_key
    ]


def store_embeddings(con: duckdb.DuckDBPyConnection, rows: Sequence[EmbeddingRow]) -> None:
    """Upsert embeddings (the caller holds the transaction)."""
    bulk_insert(con, "article_embeddings", rows, key=("article_id",), update=True)


@retry_conflicts
def load_articles(con: duckdb.DuckDBPyConnection, records: Sequence[ArticleRecord]) -> int:
    """Upsert a batch of articles with their entities and matches, in one transaction.

    An article already stored keeps its ``first_seen_at``; its entities and matches are replaced.
    Articles whose content hash an earlier article already has get ``duplicate_of`` set.
    """
    if not records:
        return 0
    now = now_utc()
    unique = list({r.article_id: r for r in records}.values())
    columns = [
        c
        for c in field_names(ArticleRecord)
        if c not in ("entities", "matches", "vector", "vector_key")
    ]
    entities = [
        EntityRow(r.article_id, e.entity_id, e.name, e.type, e.count, e.first_pos, e.in_title)
        for r in unique
        for e in r.entities
    ]
    matches = [MatchRow.of(r.article_id, m, now) for r in unique for m in r.matches]
    embeddings = embedding_rows(((r.article_id, r) for r in unique), now)
    ids = [r.article_id for r in unique]
    with transaction(con):
        bulk_insert(
            con,
            "articles",
            unique,
            columns=columns,
            extra={"first_seen_at": now, "updated_at": now},
            key=("article_id",),
            update=True,
            keep=("canonical_url", "is_baseline", "first_seen_at"),
        )
        for table in ("article_entities", "article_matches"):
            con.execute(f"DELETE FROM {table} WHERE {among('article_id')}", [keys(ids)])
        bulk_insert(con, "article_entities", entities)
        bulk_insert(con, "article_matches", matches)
        store_embeddings(con, embeddings)
        mark_duplicates(con, ids)
        index_articles(con, ids)  # the search index changes with the articles it indexes
        if not unique[0].is_baseline:
            pause_point("load")  # crash-test hook: an ingest batch written, not committed
    return len(unique)


def mark_duplicates(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> None:
    """Point each article at the earliest other article with the same content hash."""
    con.execute(
        f"""
        UPDATE articles SET duplicate_of = first.article_id
        FROM (
            SELECT content_hash, arg_min(article_id, (first_seen_at, article_id)) AS article_id
            FROM articles
            WHERE content_hash IN (
                SELECT content_hash FROM articles
                WHERE {among("article_id", "$ids")}
            )
            GROUP BY content_hash
        ) AS first
        WHERE articles.content_hash = first.content_hash
          AND articles.article_id <> first.article_id
          AND {among("articles.article_id", "$ids")}
        """,
        {"ids": keys(ids)},
    )


__all__ = [
    "EmbeddingRow",
    "EntityRow",
    "FeedFetchRow",
    "FeedItemRow",
    "FeedRow",
    "FeedStateRow",
    "MatchRow",
    "due_targets",
    "embedding_rows",
    "feed_id_for",
    "finish_run",
    "load_articles",
    "mark_duplicates",
    "pending_candidates",
    "record_polls",
    "register_feeds",
    "retry_candidates",
    "start_run",
    "store_embeddings",
]
