"""The warehouse's side of polling: feeds and their state, runs, and each run's polls.

Every write takes a whole batch and runs in one transaction; every write is idempotent (keys
are stable hashes of URLs, so re-loading a batch after a crash replaces rather than duplicates).
Articles and their matches are loaded by :mod:`newsmon.warehouse.loads`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb

from newsmon.core.settings import FeedConfig
from newsmon.extractors.pipeline import FeedPoll, FeedTarget, entry_key, stable_id
from newsmon.extractors.schedule import (
    FeedSchedule,
    NextPoll,
    PollOutcome,
    ScheduleRules,
    is_due,
    next_poll,
)
from newsmon.extractors.urls import strip_userinfo
from newsmon.warehouse.store import (
    batch_view,
    bulk_insert,
    keys_param,
    now_utc,
    retry_conflicts,
    sql_in_keys,
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
    ids = keys_param(r.feed_id for r in rows)
    # write only the feeds that are new or whose feeds.toml entry changed: rewriting every
    # feed on every run took 20 s at 180,000 feeds (docs/scaling.md)
    configured = {
        row[0]: tuple(row[1:])
        for row in con.execute(
            "SELECT feed_id, name, tags, language, poll_interval_minutes FROM feeds "
            f"WHERE {sql_in_keys('feed_id')}",
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
            f"SELECT feed_id, etag, last_modified FROM feeds WHERE {sql_in_keys('feed_id')}", [ids]
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


def next_poll_times(
    con: duckdb.DuckDBPyConnection, feed_ids: Sequence[str]
) -> dict[str, datetime | None]:
    """When each of ``feed_ids`` is polled next, as stored by :func:`record_polls`."""
    rows = con.execute(
        f"SELECT feed_id, next_poll_at FROM feeds WHERE {sql_in_keys('feed_id')}",
        [keys_param(feed_ids)],
    ).fetchall()
    return dict(rows)


def due_targets(
    con: duckdb.DuckDBPyConnection,
    targets: Sequence[FeedTarget],
    now: datetime,
    ceiling: timedelta | None = None,
) -> list[FeedTarget]:
    """The targets whose next poll time has come (or that were never polled).

    With ``ceiling`` (immediate subscriptions, :meth:`ScheduleRules.of`), a quarter of it early,
    since ``serve`` runs the ingest at that same interval and a feed polled a few seconds into
    one run must be due at the next; and also every healthy feed whose interval came from its
    publishing rate and that has waited ``ceiling`` since its last poll, whatever was scheduled
    before the ceiling applied. The feed's own word (TTL, max-age, Retry-After), a configured
    interval and a failure back-off still hold."""
    scheduled = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT feed_id, next_poll_at, last_polled_at, error_streak, schedule_reason "
            f"FROM feeds WHERE {sql_in_keys('feed_id')}",
            [keys_param(t.feed_id for t in targets)],
        ).fetchall()
    }
    if ceiling is None:
        return [t for t in targets if is_due(scheduled.get(t.feed_id, (None,))[0], now)]
    soon = now + ceiling / 4

    def due(target: FeedTarget) -> bool:
        next_at, last_at, streak, why = scheduled.get(target.feed_id, (None, None, 0, None))
        if is_due(next_at, soon):
            return True
        by_rate = streak == 0 and why in (None, "rate", "overflow")
        return by_rate and (last_at is None or last_at + ceiling <= soon)

    return [t for t in targets if due(t)]


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
    after a crash, by the next (see :func:`newsmon.warehouse.loads.pending_candidates`), even
    if the feed then says 304.
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
                f"SELECT feed_id, guid FROM feed_items WHERE {sql_in_keys('feed_id')}",
                [keys_param(p.target.feed_id for p in polls)],
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
            WHERE {sql_in_keys("feed_id")}
            """,
            [keys_param(p.target.feed_id for p in polls)],
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


__all__ = [
    "FeedFetchRow",
    "FeedItemRow",
    "FeedRow",
    "FeedStateRow",
    "due_targets",
    "feed_id_for",
    "finish_run",
    "next_poll_times",
    "record_polls",
    "register_feeds",
    "start_run",
]
