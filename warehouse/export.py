"""Export the warehouse as date-partitioned Parquet (or CSV) datasets for other tools.

Four datasets under the output directory, each a Hive-partitioned folder written by one DuckDB
``COPY ... TO ... (PARTITION_BY (day))``, ``day`` being the article's UTC publication day
(first-seen day when the feed gave no date):

- ``articles/day=YYYY-MM-DD/*.parquet``: one row per article (text included), with its story,
  its best topic score and the topics it is relevant to;
- ``matches/``: one row per article and topic (score, relevance, explanation as JSON text);
- ``entities/``: one row per article and entity;
- ``stories/``: one row per story with an article in the export, partitioned by the story's
  first day.

``since`` keeps articles published (else first seen) on or after that UTC day; the other datasets
follow the articles kept. See docs/queries.md for reading it back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from newsmon.core.errors import ConfigError, WarehouseError

FORMATS = ("parquet", "csv")
_DAY = "CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)"

_DATASETS: dict[str, str] = {
    "articles": f"""
        SELECT {_DAY} AS day, a.article_id, a.story_id, a.canonical_url, a.url, a.final_url,
               f.name AS feed, coalesce(a.site_name, f.name) AS outlet, a.title, a.author,
               a.published_at, a.first_seen_at, a.fetched_at, a.language, a.detected_language,
               a.summary, a.text, a.extraction_status, a.extraction_reason, a.is_baseline,
               a.duplicate_of, m.best_score,
               coalesce(m.relevant_to, []::VARCHAR[]) AS relevant_to
        FROM kept a
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        LEFT JOIN (
            SELECT article_id, max(score) AS best_score,
                   list(topic ORDER BY topic) FILTER (WHERE relevant) AS relevant_to
            FROM article_matches GROUP BY article_id
        ) m ON m.article_id = a.article_id
    """,
    "matches": f"""
        SELECT {_DAY} AS day, m.article_id, m.topic, m.score, m.relevant,
               CAST(m.explanation AS VARCHAR) AS explanation, m.matched_at
        FROM article_matches m JOIN kept a USING (article_id)
    """,
    "entities": f"""
        SELECT {_DAY} AS day, e.article_id, e.entity_id, e.name, e.type, e.count, e.first_pos,
               e.in_title
        FROM article_entities e JOIN kept a USING (article_id)
    """,
    "stories": """
        SELECT CAST(timezone('UTC', s.first_seen_at) AS DATE) AS day, s.story_id, s.title,
               s.first_seen_at, s.last_seen_at, s.first_article_id, s.best_article_id,
               s.article_count, s.outlet_count, s.outlets
        FROM stories s WHERE s.story_id IN (SELECT story_id FROM kept)
    """,
}


@dataclass(frozen=True)
class ExportedDataset:
    name: str
    rows: int
    files: int
    path: Path


def export_warehouse(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    *,
    fmt: str = "parquet",
    since: date | None = None,
    overwrite: bool = False,
) -> list[ExportedDataset]:
    """Write the four datasets under ``out`` (see the module docstring)."""
    if fmt not in FORMATS:
        raise ConfigError("--format", "", f"unknown format {fmt!r}", "use parquet or csv")
    if out.exists() and not out.is_dir():
        raise ConfigError(out, "", "is a file", "give a directory to export into")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            out, "", "is not empty", "choose a new directory or pass --overwrite to replace it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(f"cannot create {out}: {exc.strerror}") from None
    day = "NULL" if since is None else f"DATE '{since.isoformat()}'"
    kept = f"WITH kept AS (SELECT * FROM articles a WHERE {day} IS NULL OR {_DAY} >= {day}) "
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
    written = []
    try:
        for name, body in _DATASETS.items():
            query = kept + body
            target = out / name
            row = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
            rows = int(row[0]) if row else 0
            if target.exists():
                shutil.rmtree(target)  # --overwrite: the dataset is replaced, no stale days
            if rows:
                path = str(target).replace("'", "''")
                con.execute(
                    f"COPY ({query} ORDER BY day) TO '{path}' ({options}, PARTITION_BY (day))"
                )
            files = sum(1 for _ in target.rglob(f"*.{fmt}")) if target.exists() else 0
            written.append(ExportedDataset(name, rows, files, target))
    except duckdb.Error as exc:
        raise WarehouseError(f"export failed: {str(exc).splitlines()[0]}") from None
    return written


__all__ = ["FORMATS", "ExportedDataset", "export_warehouse"]
