"""Subscriptions kept in the warehouse, and who left which subscription.

The reading room's Alerts page makes, edits, pauses and deletes subscriptions here (the
``subscriptions`` table: alerts.toml's keys, plus who made it and whether it is paused); the
digest flow reads them beside alerts.toml's (:func:`stored_entries`, validated by
:func:`newsmon.core.alerts.subscription_from` like a file's). ``unsubscribes`` holds one row per
subscription and address that asked to stop (the digests' one-click link): the digest leaves the
address out, whichever kind the subscription is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from newsmon.core.alerts import DAYS, KEYS, Subscription
from newsmon.warehouse.store import now_utc, retry_conflicts, transaction

# alerts.toml's keys that a stored subscription has (backfill_days: the default), in the table's
# order; two are named otherwise there (SQL keywords)
STORED_KEYS = tuple(k for k in KEYS if k != "backfill_days")
_SQL_NAMES = ", ".join({"at": "at_time", "day": "weekday"}.get(c, c) for c in STORED_KEYS)


@dataclass(frozen=True)
class StoredSubscription:
    """A row of ``subscriptions``: the entry (alerts.toml's keys) and its history."""

    entry: dict[str, Any]
    paused: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @property
    def name(self) -> str:
        return str(self.entry["name"])


def entry_of(sub: Subscription) -> dict[str, Any]:
    """A subscription as the table of keys alerts.toml would hold for it."""
    return {
        "name": sub.name,
        "recipients": list(sub.recipients),
        "topics": list(sub.topics),
        "min_score": sub.min_score,
        "frequency": sub.frequency,
        "at": sub.at.strftime("%H:%M"),
        "day": DAYS[sub.day],
        "timezone": sub.timezone,
        "max_items": sub.max_items,
        "languages": list(sub.languages),
        "channel": sub.channel,
        "url": sub.url,
    }


def stored(con: duckdb.DuckDBPyConnection, name: str | None = None) -> list[StoredSubscription]:
    """The stored subscriptions (all, or the one named), by name."""
    rows = con.execute(
        f"SELECT {_SQL_NAMES}, paused, created_by, created_at, updated_by, updated_at "
        "FROM subscriptions WHERE $name IS NULL OR name = $name ORDER BY name",
        {"name": name},
    ).fetchall()
    out = []
    for row in rows:
        entry = dict(zip(STORED_KEYS, row[: len(STORED_KEYS)], strict=True))
        if entry["channel"] == "email":
            del entry["url"]
        out.append(StoredSubscription(entry, *row[len(STORED_KEYS) :]))
    return out


@retry_conflicts
def save(con: duckdb.DuckDBPyConnection, sub: Subscription, user: str, *, new: bool) -> bool:
    """Create (``new``) or replace a stored subscription; False if ``new`` and the name is taken,
    or not ``new`` and there is none by that name. The pause state is kept on an edit."""
    entry = entry_of(sub)
    now = now_utc()
    with transaction(con):
        row = con.execute(
            "SELECT paused, created_by, created_at FROM subscriptions WHERE name = ?", [sub.name]
        ).fetchone()
        if (row is not None) == new:
            return False
        paused, created_by, created_at = row if row else (False, user, now)
        con.execute("DELETE FROM subscriptions WHERE name = ?", [sub.name])
        con.execute(
            f"INSERT INTO subscriptions ({_SQL_NAMES}, paused, created_by, created_at,"
            f" updated_by, updated_at) VALUES ({', '.join('?' * (len(STORED_KEYS) + 5))})",
            [*(entry[c] for c in STORED_KEYS), paused, created_by, created_at, user, now],
        )
    return True


@retry_conflicts
def set_paused(con: duckdb.DuckDBPyConnection, name: str, paused: bool, user: str) -> bool:
    with transaction(con):
        found = con.execute("SELECT count(*) FROM subscriptions WHERE name = ?", [name]).fetchone()
        if found != (1,):
            return False
        con.execute(
            "UPDATE subscriptions SET paused = ?, updated_by = ?, updated_at = ? WHERE name = ?",
            [paused, user, now_utc(), name],
        )
    return True


@retry_conflicts
def delete(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Delete a stored subscription (its digests stay in the delivery log)."""
    with transaction(con):
        found = con.execute("SELECT count(*) FROM subscriptions WHERE name = ?", [name]).fetchone()
        con.execute("DELETE FROM subscriptions WHERE name = ?", [name])
    return found == (1,)


# --------------------------------------------------------------------------- unsubscribes


@retry_conflicts
def unsubscribe(
    con: duckdb.DuckDBPyConnection, subscription: str, recipient: str, via: str
) -> bool:
    """Record that ``recipient`` left ``subscription``; False if it already had."""
    with transaction(con):
        if unsubscribed_from(con, subscription, [recipient]):
            return False
        con.execute(
            "INSERT INTO unsubscribes VALUES (?, ?, ?, ?)",
            [subscription, recipient.lower(), now_utc(), via],
        )
    return True


@retry_conflicts
def resubscribe(con: duckdb.DuckDBPyConnection, subscription: str, recipient: str) -> bool:
    with transaction(con):
        found = unsubscribed_from(con, subscription, [recipient])
        con.execute(
            "DELETE FROM unsubscribes WHERE subscription = ? AND recipient = ?",
            [subscription, recipient.lower()],
        )
    return bool(found)


def unsubscribed_from(
    con: duckdb.DuckDBPyConnection, subscription: str, recipients: list[str]
) -> set[str]:
    """Which of ``recipients`` (compared without case) left ``subscription``."""
    rows = con.execute(
        "SELECT recipient FROM unsubscribes WHERE subscription = ? "
        "AND list_contains(?::VARCHAR[], recipient)",
        [subscription, [r.lower() for r in recipients]],
    ).fetchall()
    left = {r[0] for r in rows}
    return {r for r in recipients if r.lower() in left}


def unsubscribed(con: duckdb.DuckDBPyConnection) -> Mapping[str, list[tuple[str, datetime, str]]]:
    """Every subscription's departed addresses: name -> [(recipient, when, via)]."""
    out: dict[str, list[tuple[str, datetime, str]]] = {}
    for name, recipient, at, via in con.execute(
        "SELECT subscription, recipient, unsubscribed_at, via FROM unsubscribes "
        "ORDER BY subscription, recipient"
    ).fetchall():
        out.setdefault(name, []).append((recipient, at, via))
    return out


__all__ = [
    "STORED_KEYS",
    "StoredSubscription",
    "delete",
    "entry_of",
    "resubscribe",
    "save",
    "set_paused",
    "stored",
    "unsubscribe",
    "unsubscribed",
    "unsubscribed_from",
]
