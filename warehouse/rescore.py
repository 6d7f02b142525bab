"""Rescoring: re-run the topic filters over every stored article after the topics change.

Nothing is fetched again: the stored title and text (or feed summary) are scored with the new
:class:`~extractors.topics.TopicSet`. New entities and matches are staged in temporary tables
batch by batch (memory is bounded by the batch size) and swapped in with one transaction at the
end, so a reader sees either the old scores or the new ones, and a rescore that fails or is killed
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from newsmon.core.crashpoints import pause_point
from newsmon.extractors.embedding import ENCODER, Given, from_blob
from newsmon.extractors.language import detect_language
from newsmon.extractors.pipeline import batches
from newsmon.extractors.topics import Document, FilterResult, TopicSet, filter_documents
from newsmon.warehouse.loads import EntityRow, MatchRow, embedding_rows
from newsmon.warehouse.store import (
    bulk_insert,
    keys_param,
    now_utc,
    retry_conflicts,
    sql_in_keys,
    transaction,
)

Progress = Callable[[int, int], None]  # (articles just scored, articles in all)
# one batch: its documents, the topics, the embeddings stored for them (topics.filter_documents)
Scorer = Callable[[Sequence[Document], TopicSet, Given], list[FilterResult]]


@dataclass
class TopicChange:
    """How one topic's verdicts moved."""

    relevant_before: int = 0
    relevant_after: int = 0
    became_relevant: int = 0
    no_longer_relevant: int = 0


@dataclass
class RescoreSummary:
    articles: int = 0
    changed: int = 0  # articles whose relevance changed for at least one topic
    topics: dict[str, TopicChange] = field(default_factory=dict)


def _article_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT article_id FROM articles ORDER BY article_id").fetchall()
    return [row[0] for row in rows]


@dataclass(frozen=True)
class _Stored:
    article_id: str
    document: Document
    has_language: bool
    text_key: str | None = None
    vector: bytes | None = None


@dataclass(frozen=True)
class _Language:
    article_id: str
    detected_language: str | None


def _documents(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> list[_Stored]:
    rows = con.execute(
        f"""
        SELECT a.article_id, a.title, a.text, a.summary, a.detected_language IS NOT NULL,
               e.text_key, e.vector
        FROM articles a LEFT JOIN article_embeddings e
            ON e.article_id = a.article_id AND e.encoder = $encoder
        WHERE {sql_in_keys("a.article_id", "$ids")} ORDER BY a.article_id
        """,
        {"ids": keys_param(ids), "encoder": ENCODER},
    ).fetchall()
    return [_Stored(r[0], Document.of(r[1], r[2], r[3]), r[4], r[5], r[6]) for r in rows]


def _vectors(stored: Sequence[_Stored]) -> Given:
    return {
        i: (s.text_key, from_blob(s.vector))
        for i, s in enumerate(stored)
        if s.text_key and s.vector
    }


def rescore(
    con: duckdb.DuckDBPyConnection,
    topics: TopicSet,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    scorer: Scorer = filter_documents,
) -> RescoreSummary:
    """Score every stored article again with ``topics`` and replace entities and matches.

    ``scorer`` scores one batch (the flow passes one that uses the process pool). Topics that
    are no longer defined lose their matches; new topics gain them.
    """
    now = now_utc()
    con.execute("CREATE OR REPLACE TEMP TABLE rescore_entities AS FROM article_entities LIMIT 0")
    con.execute("CREATE OR REPLACE TEMP TABLE rescore_matches AS FROM article_matches LIMIT 0")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rescore_languages "
        "(article_id VARCHAR, detected_language VARCHAR)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE rescore_embeddings AS FROM article_embeddings LIMIT 0"
    )
    ids = _article_ids(con)
    for batch in batches(ids, batch_size):
        stored = _documents(con, batch)
        results = scorer([s.document for s in stored], topics, _vectors(stored))
        pairs = list(zip(stored, results, strict=True))
        entities = [
            EntityRow(s.article_id, e.entity_id, e.name, e.type, e.count, e.first_pos, e.in_title)
            for s, res in pairs
            for e in res.entities
        ]
        matches = [MatchRow.of(s.article_id, m, now) for s, res in pairs for m in res.matches]
        # only the embeddings computed now (a text that changed, or stored before models)
        embeddings = embedding_rows(
            ((s.article_id, res) for s, res in pairs if res.vector_key != s.text_key), now
        )
        # articles stored before languages were detected get theirs now
        languages = [
            _Language(s.article_id, detect_language(f"{s.document.title}\n{s.document.text}"))
            for s in stored
            if not s.has_language
        ]
        bulk_insert(con, "rescore_entities", entities)
        bulk_insert(con, "rescore_matches", matches)
        bulk_insert(con, "rescore_languages", languages)
        bulk_insert(con, "rescore_embeddings", embeddings)
        if progress:
            progress(len(batch), len(ids))
    summary = _compare(con, len(ids))
    _swap_in(con, ids, now)
    for table in ("rescore_entities", "rescore_matches", "rescore_languages", "rescore_embeddings"):
        con.execute(f"DROP TABLE {table}")
    return summary


@retry_conflicts
def _swap_in(con: duckdb.DuckDBPyConnection, ids: Sequence[str], started: datetime) -> None:
    """Replace the rescored articles' entities and matches: only theirs, and only of those
    not rewritten since the rescore began (on a DuckLake warehouse an ingest may have added or
    reloaded articles meanwhile, scored by its own run from the newer text)."""
    with transaction(con):
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE rescore_ids AS
            SELECT article_id FROM articles
            WHERE {sql_in_keys("article_id", "$ids")} AND updated_at <= $started
            """,
            {"ids": keys_param(ids), "started": started},
        )
        for table, staged in (
            ("article_entities", "rescore_entities"),
            ("article_matches", "rescore_matches"),
        ):
            con.execute(f"DELETE FROM {table} WHERE article_id IN (FROM rescore_ids)")
            con.execute(
                f"INSERT INTO {table} SELECT * FROM {staged} WHERE article_id IN (FROM rescore_ids)"
            )
        pause_point("rescore")  # a crash test kills here: rows swapped, not committed
        con.execute(
            "DELETE FROM article_embeddings WHERE article_id IN "
            "(SELECT article_id FROM rescore_embeddings WHERE article_id IN (FROM rescore_ids))"
        )
        con.execute(
            "INSERT INTO article_embeddings SELECT * FROM rescore_embeddings "
            "WHERE article_id IN (FROM rescore_ids)"
        )
        con.execute(
            """
            UPDATE articles SET detected_language = l.detected_language
            FROM rescore_languages l
            WHERE articles.article_id = l.article_id AND l.article_id IN (FROM rescore_ids)
            """
        )
        con.execute("DROP TABLE rescore_ids")


def _compare(con: duckdb.DuckDBPyConnection, articles: int) -> RescoreSummary:
    """Old against new verdicts, per topic; an article without a match counts as not relevant."""
    rows = con.execute(
        """
        SELECT topic,
               count(*) FILTER (WHERE old_rel)                  AS before,
               count(*) FILTER (WHERE new_rel)                  AS after,
               count(*) FILTER (WHERE new_rel AND NOT old_rel)  AS gained,
               count(*) FILTER (WHERE old_rel AND NOT new_rel)  AS lost
        FROM (
            SELECT coalesce(o.article_id, n.article_id) AS article_id,
                   coalesce(o.topic, n.topic)           AS topic,
                   coalesce(o.relevant, false)          AS old_rel,
                   coalesce(n.relevant, false)          AS new_rel
            FROM article_matches o FULL JOIN rescore_matches n USING (article_id, topic)
        )
        GROUP BY topic ORDER BY topic
        """
    ).fetchall()
    changed = con.execute(
        """
        SELECT count(DISTINCT article_id) FROM (
            SELECT coalesce(o.article_id, n.article_id) AS article_id
            FROM article_matches o FULL JOIN rescore_matches n USING (article_id, topic)
            WHERE coalesce(o.relevant, false) <> coalesce(n.relevant, false)
        )
        """
    ).fetchone()
    return RescoreSummary(
        articles=articles,
        changed=int(changed[0]) if changed else 0,
        topics={t: TopicChange(b, a, g, lost) for t, b, a, g, lost in rows},
    )


__all__ = ["RescoreSummary", "Scorer", "TopicChange", "rescore"]
