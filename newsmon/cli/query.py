"""Commands that read the warehouse: sql, search, export."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsmon.cli.options import (
    current_settings,
    db_option,
    format_option,
    handle_errors,
    resolve_db,
)
from newsmon.cli.render import render

if TYPE_CHECKING:
    pass


# --- sql ------------------------------------------------------------------------------------


@click.command()
@db_option
@format_option
@click.argument("query")
@handle_errors
def sql(db: Path | None, fmt: str, query: str) -> None:
    """Run a read-only SQL QUERY against the warehouse, and nothing else: no file, network,
    ATTACH or LOAD from SQL (`newsmon export` writes files)."""
    import duckdb

    from newsmon.core.errors import QueryError
    from newsmon.warehouse.store import connect_sealed, run_query

    if not query.strip():
        raise QueryError('empty query: give one SQL statement, e.g. newsmon sql "SELECT ..."')
    # nothing but the warehouse: no COPY TO, file readers, ATTACH or LOAD (newsmon export
    # writes files); fts is loaded for BM25 before access is closed
    with connect_sealed(resolve_db(db)) as con:
        try:
            table = run_query(con, query)
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise QueryError(f"query failed: {message}") from None
    click.echo(render(table.columns, table.rows, fmt))


# --- search ---------------------------------------------------------------------------------


@click.command()
@db_option
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only articles published on or after this day (UTC), YYYY-MM-DD.",
)
@click.option("--topic", default=None, help="Only articles relevant to this topic.")
@click.option("--language", default=None, help="Only articles in this language, e.g. pl.")
@click.option("--source", default=None, help="Only articles of this outlet (as listed).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--all-copies", is_flag=True, help="List every copy of a story, not only the best-ranked one."
)
@format_option
@click.argument("query")
@handle_errors
def search(
    db: Path | None,
    since: datetime | None,
    topic: str | None,
    language: str | None,
    source: str | None,
    limit: int,
    all_copies: bool,
    fmt: str,
    query: str,
) -> None:
    """Full-text search (BM25) over titles, summaries and texts; best match first.

    One row per story (its best-ranked copy; `copies` counts the story's articles) unless
    --all-copies. Columns: bm25, published, outlet, title, score and relevant (for --topic, else
    the best topic), copies, url. Works offline; the index is rebuilt by `run` and `rescore`.
    A QUERY with AND, OR, NOT, NEAR/N, quotes, parentheses, prefix* or title: is read in the
    topics' query language: ranked by BM25 on its words, kept where it matches (docs/topics.md).
    """
    from newsmon.warehouse.search import SearchOptions
    from newsmon.warehouse.search import search as run_search
    from newsmon.warehouse.store import connect

    if topic is not None:  # a typo would otherwise find nothing, silently
        from newsmon.extractors.topics import declared_topics
        from newsmon.learn import check_topic

        topics_path = current_settings().topics_path
        check_topic(declared_topics(topics_path), topic, topics_path)
    options = SearchOptions(
        since=since.date() if since else None, topic=topic, limit=limit, all_copies=all_copies,
        language=language, source=source,
    )  # fmt: skip
    with connect(resolve_db(db), read_only=True) as con:
        table = run_search(con, query, options).without("article_id")  # (the web app's link)
    click.echo(render(table.columns, table.rows, fmt))


# --- export ---------------------------------------------------------------------------------


@click.command()
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the datasets.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only articles published on or after this day (UTC), YYYY-MM-DD.",
)
@click.option("--overwrite", is_flag=True, help="Replace the datasets in a non-empty OUT.")
@click.argument("out", type=click.Path(path_type=Path))
@handle_errors
def export(db: Path | None, fmt: str, since: datetime | None, overwrite: bool, out: Path) -> None:
    """Write articles, matches, entities and stories under OUT, partitioned by day.

    Hive-style folders (OUT/articles/day=YYYY-MM-DD/data_0.parquet, ...), one dataset per
    table; docs/queries.md shows how to read them back.
    """
    from newsmon.warehouse.export import export_warehouse
    from newsmon.warehouse.store import connect

    with connect(resolve_db(db), read_only=True) as con:
        datasets = export_warehouse(
            con, out, fmt=fmt, since=since.date() if since else None, overwrite=overwrite
        )
    for d in datasets:
        click.echo(f"{d.name:<9} {d.rows:>7} rows  {d.files:>4} files  {d.path}")
