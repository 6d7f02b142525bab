"""Analysts' labels: their verdicts on stored articles, per topic (the ``labels`` table).

A label is appended, never updated: the latest verdict per article, topic and analyst counts,
and the earlier ones stay as history. Training reads the labelled articles with their stored
text and embedding (:func:`labelled_articles`), and so does ``newsmon eval --db``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from newsmon.extractors.embedding import ENCODER, from_blob
from newsmon.warehouse.store import now_utc, retry_conflicts, transaction


class UnknownArticleError(LookupError):
    """No stored article has the id (or id prefix) given."""


@dataclass(frozen=True)
class Label:
    article_id: str
    topic: str
    relevant: bool
    note: str | None
    labelled_by: str


def resolve_article(con: duckdb.DuckDBPyConnection, ref: str) -> tuple[str, str | None]:
    """The article whose id is ``ref`` or starts with it (at least 6 characters, unique):
    ``(article_id, title)``. Raises :class:`UnknownArticleError`."""
    rows = con.execute(
        "SELECT article_id, title FROM articles WHERE article_id = $r "
        "OR (length($r) >= 6 AND starts_with(article_id, $r)) ORDER BY article_id LIMIT 2",
        {"r": ref},
    ).fetchall()
    exact = [r for r in rows if r[0] == ref]
    if exact:
        return exact[0][0], exact[0][1]
    if len(rows) != 1:
        raise UnknownArticleError("several articles" if rows else "no article", ref)
    return rows[0][0], rows[0][1]


@retry_conflicts
def add_label(con: duckdb.DuckDBPyConnection, label: Label) -> None:
    """Record one verdict (the article must exist: see :func:`resolve_article`)."""
    with transaction(con):
        con.execute(
            "INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?)",
            [
                label.article_id,
                label.topic,
                label.relevant,
                label.note,
                label.labelled_by,
                now_utc(),
            ],
        )


def _has_labels(con: duckdb.DuckDBPyConnection) -> bool:
    """A warehouse from before migration 6, opened read-only, has no labels table yet."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'labels'").fetchone()
    return bool(row and row[0])


def labelled_articles(con: duckdb.DuckDBPyConnection, topic: str) -> list[dict[str, Any]]:
    """The labelled articles of ``topic``, one per article (analysts who disagree: the latest
    verdict), with their text, language and stored embedding."""
    if not _has_labels(con):
        return []
    rows = con.execute(
        """
        WITH one AS (
            FROM labels
            WHERE topic = $topic
            QUALIFY row_number() OVER (PARTITION BY article_id ORDER BY labelled_at DESC) = 1
        )
        SELECT o.article_id, a.title, a.text, a.summary, o.relevant, a.detected_language,
               CASE WHEN a.text IS NULL THEN 'feed_summary' ELSE 'full_text' END,
               e.text_key, e.vector
        FROM one o
        JOIN articles a USING (article_id)
        LEFT JOIN article_embeddings e ON e.article_id = o.article_id AND e.encoder = $encoder
        ORDER BY o.article_id
        """,
        {"topic": topic, "encoder": ENCODER},
    ).fetchall()
    return [
        {
            "id": f"label:{r[0]}",
            "article_id": r[0],
            "title": r[1] or "",
            "text": r[2],
            "summary": r[3],
            "label": int(r[4]),
            "lang": r[5],
            "text_kind": r[6],
            "text_key": r[7],
            "vector": from_blob(r[8]) if r[8] is not None else None,
        }
        for r in rows
    ]


__all__ = [
    "Label",
    "UnknownArticleError",
    "add_label",
    "labelled_articles",
    "resolve_article",
]
