"""Small helpers shared by test files: reading a warehouse file, making an article record."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from newsmon.extractors.pipeline import ArticleRecord


def rows(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Every row ``sql`` (with ``params``) gives on the DuckDB file ``db``, opened read-only with
    plain duckdb, no newsmon code in between (a duckdb.Error while another process holds it)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def record(n: int, text: str, **changes: object) -> ArticleRecord:
    """An extracted article ``n`` (id ``id{n}``, URL ``https://news.example/{n}``, feed ``f1``)
    with body ``text``; ``changes`` replaces any other field."""
    url = f"https://news.example/{n}"
    base = ArticleRecord(
        article_id=f"id{n}",
        canonical_url=url,
        url=url,
        final_url=url,
        feed_id="f1",
        guid=str(n),
        title=f"Title {n}",
        author=None,
        published_at=datetime(2026, 11, 1, tzinfo=UTC),
        fetched_at=datetime(2026, 11, 2, tzinfo=UTC),
        language="en",
        site_name="Example",
        description=None,
        summary="summary",
        text=text,
        extraction_status="extracted",
        extraction_reason=None,
        extraction_error=None,
        fetch_attempts=1,
        http_status=200,
        content_hash=f"hash-{text}",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
