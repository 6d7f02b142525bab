"""What each reader of the reading room keeps: read marks and saved searches.

``reads`` holds one row per reader and article read (opening its page marks it; a button
marks it unread again); :mod:`newsmon.warehouse.reading` shows a story as read when any of its
copies is. ``saved_searches`` holds a reader's named searches (words and topic), each with its
Atom feed in the web app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from newsmon.warehouse.store import now_utc, retry_conflicts, transaction


@dataclass(frozen=True)
class SavedSearch:
    name: str
    query: str
    topic: str | None
    created_at: datetime


@retry_conflicts
def mark(
    con: duckdb.DuckDBPyConnection, user: str, article_ids: Sequence[str], read: bool = True
) -> None:
    """Mark articles read (or unread) for ``user``; ids that are not stored are ignored."""
    ids = list(dict.fromkeys(article_ids))
    with transaction(con):
        con.execute(
            "DELETE FROM reads WHERE user_name = ? AND list_contains(?::VARCHAR[], article_id)",
            [user, ids],
        )
        if read:
            con.execute(
                "INSERT INTO reads SELECT ?, article_id, ? FROM articles "
                "WHERE list_contains(?::VARCHAR[], article_id)",
                [user, now_utc(), ids],
            )


def is_read(con: duckdb.DuckDBPyConnection, user: str, article_id: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM reads WHERE user_name = ? AND article_id = ?", [user, article_id]
    ).fetchone()
    return bool(row and row[0])


def saved_searches(con: duckdb.DuckDBPyConnection, user: str) -> list[SavedSearch]:
    rows = con.execute(
        "SELECT name, query, topic, created_at FROM saved_searches WHERE user_name = ? "
        "ORDER BY name",
        [user],
    ).fetchall()
    return [SavedSearch(*r) for r in rows]


def saved_search(con: duckdb.DuckDBPyConnection, user: str, name: str) -> SavedSearch | None:
    found = [s for s in saved_searches(con, user) if s.name == name]
    return found[0] if found else None


@retry_conflicts
def save_search(
    con: duckdb.DuckDBPyConnection, user: str, name: str, query: str, topic: str | None
) -> None:
    """Save (or replace) ``user``'s search ``name``."""
    with transaction(con):
        con.execute("DELETE FROM saved_searches WHERE user_name = ? AND name = ?", [user, name])
        con.execute(
            "INSERT INTO saved_searches VALUES (?, ?, ?, ?, ?)",
            [user, name, query, topic, now_utc()],
        )


@retry_conflicts
def delete_search(con: duckdb.DuckDBPyConnection, user: str, name: str) -> bool:
    with transaction(con):
        found = saved_search(con, user, name) is not None
        con.execute("DELETE FROM saved_searches WHERE user_name = ? AND name = ?", [user, name])
    return found


__all__ = [
    "SavedSearch",
    "delete_search",
    "is_read",
    "mark",
    "save_search",
    "saved_search",
    "saved_searches",
]
