"""Full-text search over the articles: DuckDB's ``fts`` extension (BM25), offline.

The extension binary comes from the pinned ``duckdb-extension-fts`` package (the same version as
``duckdb``) and is loaded from its path, so nothing is downloaded: ``INSTALL fts`` would need the
network. :func:`refresh_index` rebuilds the index (``fts_main_articles``: title, summary and
text, Porter stemmer, English stop words, accents stripped); the ingest flow calls it after each
run, rescore after rescoring. DuckDB's index is not incremental: a refresh re-reads every article
(docs/stories.md has the measured cost). :func:`search` ranks articles with ``match_bm25``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from newsmon.errors import WarehouseError
from warehouse.store import Table

INDEX_SCHEMA = "fts_main_articles"


def extension_path() -> Path:
    """The ``fts`` extension binary shipped by the ``duckdb-extension-fts`` package."""
    try:
        import duckdb_extension_fts
    except ImportError:
        raise WarehouseError(
            "full-text search needs the duckdb-extension-fts package: "
            "reinstall newsmon (make setup)"
        ) from None
    root = Path(duckdb_extension_fts.__file__).parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/fts.duckdb_extension"))
    if not found:
        raise WarehouseError(
            f"duckdb-extension-fts has no fts extension for duckdb {duckdb.__version__}: "
            "install the matching version (see constraints.txt)"
        )
    return found[0]


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load the ``fts`` extension into ``con`` from the package, without network."""
    loaded = con.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'fts'"
    ).fetchone()
    if loaded and loaded[0]:
        return
    path = str(extension_path()).replace("'", "''")
    con.execute(f"LOAD '{path}'")


def has_index(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = ?", [INDEX_SCHEMA]
    ).fetchone()
    return bool(row and row[0])


def refresh_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the BM25 index over every article's title, summary and text."""
    load_fts(con)
    con.execute(
        "PRAGMA create_fts_index('articles', 'article_id', 'title', 'summary', 'text', "
        "stemmer = 'porter', stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)"
    )


@dataclass(frozen=True)
class SearchOptions:
    since: date | None = None  # published (else first seen) on or after this day (UTC)
    topic: str | None = None  # only articles relevant to this topic
    limit: int = 20
    all_copies: bool = False  # every copy of a story, not only its best-ranked one


def search(con: duckdb.DuckDBPyConnection, query: str, options: SearchOptions) -> Table:
    """Articles matching ``query``, best BM25 score first (one row per story unless
    ``all_copies``): rank, bm25, published day, outlet, title, topic score and relevance,
    copies (articles in the story), url."""
    if not has_index(con):
        raise WarehouseError(
            "the warehouse has no search index yet: it is built by `newsmon run` and "
            "`newsmon rescore`"
        )
    load_fts(con)
    topic_filter = "AND t.relevant" if options.topic else ""
    per_story = (
        ""
        if options.all_copies
        else (
            "QUALIFY row_number() OVER (PARTITION BY coalesce(a.story_id, a.article_id) "
            "ORDER BY h.bm25 DESC, a.article_id) = 1"
        )
    )
    sql = f"""
        WITH hits AS (
            SELECT article_id, {INDEX_SCHEMA}.match_bm25(article_id, $query) AS bm25
            FROM articles
        ), topics AS (
            SELECT article_id,
                   max(score) FILTER (WHERE $topic IS NULL OR topic = $topic) AS score,
                   bool_or(relevant) FILTER (WHERE $topic IS NULL OR topic = $topic) AS relevant,
                   list(topic ORDER BY topic) FILTER (WHERE relevant) AS relevant_to
            FROM article_matches GROUP BY article_id
        )
        SELECT round(h.bm25, 3) AS bm25,
               CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)
                   AS published,
               coalesce(a.site_name, f.name) AS outlet,
               a.title,
               round(t.score, 2) AS score,
               coalesce(t.relevant, false) AS relevant,
               coalesce(s.article_count, 1) AS copies,
               a.url
        FROM hits h
        JOIN articles a USING (article_id)
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        LEFT JOIN topics t ON t.article_id = a.article_id
        LEFT JOIN stories s ON s.story_id = a.story_id
        WHERE h.bm25 IS NOT NULL
          AND ($since IS NULL
               OR CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)
                  >= $since)
          {topic_filter}
        {per_story}
        ORDER BY h.bm25 DESC, a.article_id
        LIMIT $limit
    """
    cur = con.execute(
        sql,
        {
            "query": query,
            "topic": options.topic,
            "since": options.since,
            "limit": options.limit,
        },
    )
    columns = [d[0] for d in cur.description or []]
    return Table(columns, [tuple(r) for r in cur.fetchall()])


__all__ = [
    "INDEX_SCHEMA",
    "SearchOptions",
    "extension_path",
    "has_index",
    "load_fts",
    "refresh_index",
    "search",
]
