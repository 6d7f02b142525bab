"""What the reading room (newsmon/web) shows, read from the warehouse: pages of stories, one
article with why it matched and its other copies, and the feeds' health.

Read-only queries over the tables and views of docs/schema.md; the web app holds no SQL. A story
is listed by its best copy (``stories.best_article_id``: full text, top score) with its outlet
count; an article not (yet) clustered is a story of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from newsmon.warehouse.digests import why_matched

_ORDER = {
    "newest": "published_at DESC NULLS LAST, score DESC, story_id",
    "best": "score DESC, published_at DESC NULLS LAST, story_id",
}
ORDERS = tuple(_ORDER)


@dataclass(frozen=True)
class StoryFilter:
    topic: str | None = None  # only stories relevant to it; None: relevant to any topic
    language: str | None = None
    source: str | None = None  # outlet (site name, else feed name), exact
    since: date | None = None  # published (else first seen) on or after this day, UTC
    until: date | None = None  # ... on or before this day
    min_score: float = 0.0
    order: str = "newest"  # newest | best
    page: int = 1
    per_page: int = 50
    topics: tuple[str, ...] = ()  # relevant to any of these (a subscription's topics)
    languages: tuple[str, ...] = ()  # in any of these (a subscription's languages)
    reader: str | None = None  # whose read marks to show (StoryRow.read)
    unread_only: bool = False  # only stories ``reader`` has read no copy of


@dataclass(frozen=True)
class StoryRow:
    story_id: str
    article_id: str  # the copy to read
    title: str
    outlet: str
    published_at: datetime | None
    language: str | None
    topic: str
    score: float
    copies: int
    outlets: int
    read: bool = False  # the reader has read one of its copies


@dataclass(frozen=True)
class StoryPage:
    rows: list[StoryRow]
    total: int  # stories matching the filter, all pages
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Match:
    topic: str
    score: float
    relevant: bool
    entities: tuple[str, ...]  # why it matched, as the digests say it (digests.why_matched)
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Copy:
    article_id: str
    title: str
    outlet: str
    url: str
    published_at: datetime | None


@dataclass(frozen=True)
class ArticleView:
    article_id: str
    title: str
    url: str
    outlet: str
    author: str | None
    published_at: datetime | None
    first_seen_at: datetime
    language: str | None
    description: str | None
    text: str
    extraction_status: str
    story_id: str | None
    matches: list[Match] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)  # the story's other articles
    labels: list[tuple[str, bool, str, datetime]] = field(default_factory=list)


_DAY = "CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)"


def _where(f: StoryFilter) -> tuple[str, dict[str, Any]]:
    clauses = ["m.relevant", "NOT a.is_baseline", "m.score >= $min_score"]
    params: dict[str, Any] = {"min_score": f.min_score}
    if f.topic:
        clauses.append("m.topic = $topic")
        params["topic"] = f.topic
    if f.language:
        clauses.append("lower(coalesce(a.detected_language, a.language)) = lower($language)")
        params["language"] = f.language
    if f.source:
        clauses.append("coalesce(a.site_name, fd.title, fd.name) = $source")
        params["source"] = f.source
    if f.since:
        clauses.append(f"{_DAY} >= $since")
        params["since"] = f.since
    if f.until:
        clauses.append(f"{_DAY} <= $until")
        params["until"] = f.until
    if f.topics:
        clauses.append("list_contains($topics::VARCHAR[], m.topic)")
        params["topics"] = list(f.topics)
    if f.languages:
        clauses.append(
            "list_contains($languages::VARCHAR[], lower(coalesce(a.detected_language, a.language)))"
        )
        params["languages"] = [x.lower() for x in f.languages]
    if f.unread_only and f.reader:
        clauses.append(f"coalesce(a.story_id, a.article_id) NOT IN ({_READ_STORIES})")
        params["reader"] = f.reader
    return " AND ".join(clauses), params


# the stories (story id, else article id) a reader has read a copy of
_READ_STORIES = (
    "SELECT coalesce(ra.story_id, ra.article_id) FROM reads r "
    "JOIN articles ra ON ra.article_id = r.article_id WHERE r.user_name = $reader"
)


def story_page(con: duckdb.DuckDBPyConnection, f: StoryFilter) -> StoryPage:
    """One page of stories matching ``f``, newest or strongest first."""
    if f.order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}")
    where, params = _where(f)
    order = _ORDER[f.order]
    read = f"c.story_id IN ({_READ_STORIES})" if f.reader else "false"
    sql = f"""
        WITH hits AS (
            SELECT coalesce(a.story_id, a.article_id) AS story_id, a.article_id, m.topic, m.score,
                   coalesce(a.published_at, a.first_seen_at) AS published_at
            FROM article_matches m
            JOIN articles a USING (article_id)
            LEFT JOIN feeds fd ON fd.feed_id = a.feed_id
            WHERE {where}
        ), per_story AS (
            SELECT story_id, max(score) AS score, arg_max(topic, score) AS topic,
                   max(published_at) AS published_at, arg_max(article_id, score) AS top_article
            FROM hits GROUP BY story_id
        ), counted AS (
            SELECT *, count(*) OVER () AS total FROM per_story
            ORDER BY {order} LIMIT $limit OFFSET $offset
        )
        SELECT c.story_id, coalesce(s.best_article_id, c.top_article) AS article_id,
               coalesce(b.title, s.title, '') AS title,
               coalesce(b.site_name, fb.title, fb.name, '') AS outlet,
               c.published_at, coalesce(b.detected_language, b.language) AS language,
               c.topic, c.score, coalesce(s.article_count, 1), coalesce(s.outlet_count, 1),
               {read}, c.total
        FROM counted c
        LEFT JOIN stories s ON s.story_id = c.story_id
        LEFT JOIN articles b ON b.article_id = coalesce(s.best_article_id, c.top_article)
        LEFT JOIN feeds fb ON fb.feed_id = b.feed_id
        ORDER BY {", ".join("c." + key for key in order.split(", "))}
    """
    params |= {"limit": f.per_page, "offset": (max(f.page, 1) - 1) * f.per_page}
    if f.reader:
        params["reader"] = f.reader
    rows = con.execute(sql, params).fetchall()
    total = int(rows[0][-1]) if rows else _count(con, f)
    return StoryPage([StoryRow(*r[:-1]) for r in rows], total, max(f.page, 1), f.per_page)


def _count(con: duckdb.DuckDBPyConnection, f: StoryFilter) -> int:
    """Stories matching ``f`` (for a page past the last one, which has no rows to count on)."""
    where, params = _where(f)
    row = con.execute(
        f"""SELECT count(DISTINCT coalesce(a.story_id, a.article_id))
            FROM article_matches m JOIN articles a USING (article_id)
            LEFT JOIN feeds fd ON fd.feed_id = a.feed_id WHERE {where}""",
        params,
    ).fetchone()
    return int(row[0]) if row else 0


def article(con: duckdb.DuckDBPyConnection, article_id: str) -> ArticleView | None:
    """One stored article with its matches, its story's other copies and its labels."""
    row = con.execute(
        """
        SELECT a.article_id, coalesce(a.title, ''), coalesce(a.final_url, a.url),
               coalesce(a.site_name, f.title, f.name, ''), a.author, a.published_at,
               a.first_seen_at, coalesce(a.detected_language, a.language), a.description,
               coalesce(a.text, a.summary, ''), a.extraction_status, a.story_id
        FROM articles a LEFT JOIN feeds f USING (feed_id) WHERE a.article_id = ?
        """,
        [article_id],
    ).fetchone()
    if row is None:
        return None
    view = ArticleView(*row)
    for topic, score, relevant, explanation in con.execute(
        "SELECT topic, score, relevant, explanation FROM article_matches "
        "WHERE article_id = ? ORDER BY score DESC, topic",
        [article_id],
    ).fetchall():
        view.matches.append(Match(topic, score, relevant, *why_matched(explanation)))
    if view.story_id:
        view.copies.extend(
            Copy(*r)
            for r in con.execute(
                """
                SELECT a.article_id, coalesce(a.title, ''), coalesce(a.final_url, a.url),
                       coalesce(a.site_name, f.title, f.name, ''), a.published_at
                FROM articles a LEFT JOIN feeds f USING (feed_id)
                WHERE a.story_id = ? AND a.article_id <> ?
                ORDER BY coalesce(a.published_at, a.first_seen_at), a.article_id
                """,
                [view.story_id, article_id],
            ).fetchall()
        )
    view.labels.extend(
        con.execute(
            "SELECT topic, relevant, labelled_by, labelled_at FROM labels "
            "WHERE article_id = ? ORDER BY labelled_at DESC",
            [article_id],
        ).fetchall()
    )
    return view


def facets(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The values the story filters offer: topics, languages and sources of relevant articles."""
    rows = con.execute(
        """
        SELECT DISTINCT m.topic, lower(coalesce(a.detected_language, a.language)),
               coalesce(a.site_name, f.title, f.name)
        FROM article_matches m JOIN articles a USING (article_id)
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        WHERE m.relevant AND NOT a.is_baseline
        """
    ).fetchall()
    return {
        "topics": sorted({r[0] for r in rows if r[0]}),
        "languages": sorted({r[1] for r in rows if r[1]}),
        "sources": sorted({r[2] for r in rows if r[2]}),
    }


def feeds_health(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every feed's health (the ``feed_health`` view) with its next poll, worst first."""
    cur = con.execute(
        """
        SELECT h.*, f.next_poll_at, f.schedule_reason
        FROM feed_health h JOIN feeds f USING (name)
        ORDER BY h.error_streak DESC, h.name
        """
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


__all__ = [
    "ORDERS",
    "ArticleView",
    "Copy",
    "Match",
    "StoryFilter",
    "StoryPage",
    "StoryRow",
    "article",
    "facets",
    "feeds_health",
    "story_page",
]
