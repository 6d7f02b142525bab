"""The warehouse's side of ingest: articles with their entities, matches and embeddings, and the
feed entries whose article is still to fetch (or to fetch again).

Every write takes a whole batch and runs in one transaction; every write is idempotent (keys
are stable hashes of URLs, so re-loading a batch after a crash replaces rather than duplicates).
Feeds and their state, runs and polls are written by :mod:`newsmon.warehouse.polls`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from newsmon.core.crashpoints import pause_point
from newsmon.extractors.embedding import ENCODER, to_blob
from newsmon.extractors.pipeline import ArticleCandidate, ArticleRecord
from newsmon.extractors.reasons import RETRYABLE
from newsmon.extractors.topics import FilterResult, TopicMatch
from newsmon.warehouse.search import index_articles
from newsmon.warehouse.store import (
    bulk_insert,
    field_names,
    keys_param,
    now_utc,
    retry_conflicts,
    sql_in_keys,
    transaction,
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
        WHERE {"true" if feed_ids is None else sql_in_keys("feed_id")}
        ORDER BY first_seen_at, seen_order
        """,
        [] if feed_ids is None else [keys_param(feed_ids)],
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
          AND {"true" if feed_ids is None else sql_in_keys("a.feed_id")}
        ORDER BY a.first_seen_at
        """,
        [sorted(r.value for r in RETRYABLE), max_attempts]
        + ([] if feed_ids is None else [keys_param(feed_ids)]),
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
            con.execute(f"DELETE FROM {table} WHERE {sql_in_keys('article_id')}", [keys_param(ids)])
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
                WHERE {sql_in_keys("article_id", "$ids")}
            )
            GROUP BY content_hash
        ) AS first
        WHERE articles.content_hash = first.content_hash
          AND articles.article_id <> first.article_id
          AND {sql_in_keys("articles.article_id", "$ids")}
        """,
        {"ids": keys_param(ids)},
    )


__all__ = [
    "EmbeddingRow",
    "EntityRow",
    "MatchRow",
    "embedding_rows",
    "load_articles",
    "mark_duplicates",
    "pending_candidates",
    "retry_candidates",
    "store_embeddings",
]
