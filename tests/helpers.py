"""Small helpers shared by test files: reading a warehouse file, making an article record."""

from __future__ import annotations

import dataclasses
import shutil
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


def copy_warehouse(db: Path, folder: Path) -> Path:
    """A copy of the DuckDB file ``db`` (with its write-ahead log, if any) in ``folder``, for a
    test to change or kill things over while the original stays as it was."""
    copy = folder / db.name
    shutil.copyfile(db, copy)
    wal = db.with_name(db.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return copy


def immediate_alerts(path: Path) -> Path:
    """An alerts file at ``path`` with one subscription, ``flash``: every relevant article of
    eu_nato_defence scoring 0.5 or more, to duty@example.org, as soon as it is stored."""
    path.write_text(
        'version = 1\n[[subscriptions]]\nname = "flash"\nrecipients = ["duty@example.org"]\n'
        'topics = ["eu_nato_defence"]\nmin_score = 0.5\nfrequency = "immediate"\n'
        "max_items = 50\n",
        encoding="utf-8",
    )
    return path
