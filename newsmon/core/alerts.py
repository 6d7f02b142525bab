"""Alert subscriptions (``config/alerts.toml``) and when each digest is due.

A subscription says who gets which topics, how often and how much::

    [[subscriptions]]
    name = "defence-daily"              # unique; used in the log and the digest tables
    recipients = ["analyst@example.org"]
    topics = ["eu_nato_defence"]        # names of topics in topics.toml
    min_score = 0.5                     # at least the topic's threshold counts anyway
    frequency = "daily"                 # immediate | hourly | daily | weekly
    at = "07:30"                        # daily and weekly: local time of the digest
    day = "monday"                      # weekly only
    timezone = "Europe/Brussels"        # IANA name; default UTC
    max_items = 20                      # stories per digest (the rest are listed as a count)
    languages = ["en", "fr", "de"]      # detected language of the article; empty: all
    backfill_days = 3                   # the first digest looks this far back

The file is validated once, like the other config files: an error names the file, the key and
the fix. The schedule functions are pure (``now`` is a parameter) and tested as such.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsmon.core.errors import ConfigError
from newsmon.core.settings import read_toml

FREQUENCIES = ("immediate", "hourly", "daily", "weekly")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KEYS = (
    "name",
    "recipients",
    "topics",
    "min_score",
    "frequency",
    "at",
    "day",
    "timezone",
    "max_items",
    "languages",
    "backfill_days",
    "channel",
    "url",
)
CHANNELS = ("email", "slack", "teams", "matrix", "ntfy", "webhook")  # channels.email / .webhook
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

EXAMPLE = """[[subscriptions]]
name = "defence-daily"
recipients = ["analyst@example.org"]
topics = ["eu_nato_defence"]
frequency = "daily"
at = "07:30"
timezone = "Europe/Brussels"
"""


@dataclass(frozen=True)
class Subscription:
    name: str
    recipients: tuple[str, ...]
    topics: tuple[str, ...]
    min_score: float = 0.0
    frequency: str = "daily"
    at: time = time(7, 0)
    day: int = 0  # weekday for weekly digests, Monday = 0
    timezone: str = "UTC"
    max_items: int = 20
    languages: tuple[str, ...] = ()
    backfill_days: int = 3
    channel: str = "email"  # email | slack | teams | matrix | ntfy | webhook
    url: str = field(default="", repr=False)  # the webhook's address: a credential, never shown
    paused: bool = False  # made in the reading room and paused there: no digests meanwhile
    owner: str = ""  # "": alerts.toml; else the reading-room user who made it

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe_schedule(self) -> str:
        when = self.at.strftime("%H:%M")
        if self.frequency == "daily":
            return f"daily at {when} ({self.timezone})"
        if self.frequency == "weekly":
            return f"weekly on {DAYS[self.day].capitalize()} at {when} ({self.timezone})"
        return "as soon as new items arrive" if self.frequency == "immediate" else "hourly"


# --------------------------------------------------------------------------- schedule


def _slot(sub: Subscription, now: datetime) -> datetime:
    """The latest scheduled time at or before ``now`` (UTC)."""
    local = now.astimezone(sub.zone)
    if sub.frequency == "hourly":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    candidate = datetime.combine(local.date(), sub.at, tzinfo=sub.zone)
    if sub.frequency == "weekly":
        candidate -= timedelta(days=(local.weekday() - sub.day) % 7)
    step = timedelta(days=7 if sub.frequency == "weekly" else 1)
    while candidate > local:
        candidate -= step
    return candidate.astimezone(UTC)


def is_due(sub: Subscription, last_run: datetime | None, now: datetime) -> bool:
    """Whether a digest should go out now, given when the last one was run (sent or empty).

    ``immediate``: on every run. Otherwise: when the latest scheduled time has passed since the
    last digest (a missed slot is caught up once, not once per missed slot).
    """
    if sub.frequency == "immediate" or last_run is None:
        return True
    return last_run < _slot(sub, now) <= now


def next_due(sub: Subscription, now: datetime) -> datetime | None:
    """When the next digest goes out after ``now`` (None for ``immediate``: on the next run)."""
    if sub.frequency == "immediate":
        return None
    slot = _slot(sub, now)
    if sub.frequency == "hourly":
        return slot + timedelta(hours=1)
    local = slot.astimezone(sub.zone)
    step = timedelta(days=7 if sub.frequency == "weekly" else 1)
    # add calendar days in local time, so a daylight-saving change keeps the wall-clock time
    following = datetime.combine(local.date() + step, sub.at, tzinfo=sub.zone)
    return following.astimezone(UTC)


# --------------------------------------------------------------------------- loading


def load_alerts(path: Path, topics: Collection[str] | None = None) -> list[Subscription]:
    """Read and validate an alerts file; ``topics`` are the topic names that exist."""
    raw = read_toml(path, EXAMPLE)
    unknown = [k for k in raw if k not in ("version", "subscriptions")]
    if unknown:
        raise ConfigError(path, unknown[0], "unknown key", "use only: version, subscriptions")
    if raw.get("version", 1) != 1:
        raise ConfigError(path, "version", f"unsupported version {raw['version']!r}", "set 1")
    entries = raw.get("subscriptions", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(path, "subscriptions", "no subscriptions", "add [[subscriptions]]")
    subs: list[Subscription] = []
    for i, entry in enumerate(entries):
        sub = subscription_from(path, f"subscriptions[{i}]", entry, topics)
        if any(s.name == sub.name for s in subs):
            raise ConfigError(
                path, f"subscriptions[{i}].name", f"duplicate name {sub.name!r}", "rename one"
            )
        subs.append(sub)
    return subs


def subscription_from(
    path: str | Path, key: str, entry: Any, topics: Collection[str] | None
) -> Subscription:
    """One subscription from a table of alerts.toml's keys (a file's entry, a reading-room
    form or a warehouse row); ConfigError names ``path`` and ``key``."""
    if not isinstance(entry, dict):
        raise ConfigError(path, key, "must be a table", "write [[subscriptions]] with keys")
    for k in entry:
        if k not in KEYS:
            close = difflib.get_close_matches(k, KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use only: {', '.join(KEYS)}"
            raise ConfigError(path, f"{key}.{k}", "unknown key", hint)
    f = _Fields(path, key, entry)
    name = f.string("name", None)
    if not _NAME_RE.match(name):
        raise f.fail("name", f"{name!r} is not a simple name", 'use letters, digits, "-", "_"')
    key = f"{key} ({name})"
    f.key = key
    channel = f.string("channel", "email")
    if channel not in CHANNELS:
        raise f.fail("channel", f"must be one of {', '.join(CHANNELS)}", 'set "email"')
    url = f.string("url", None) if "url" in entry else ""
    if channel == "email" and url:
        raise f.fail("url", "an e-mail digest has no url", "remove it, or set channel")
    parts = urlsplit(url)
    if channel != "email" and parts.scheme not in ("http", "https"):
        raise f.fail("url", "must be the http(s) address of the webhook", 'set url = "https://..."')
    if channel == "matrix" and not (parts.username and parts.path.strip("/").startswith("!")):
        raise f.fail(
            "url",
            "a Matrix url names the access token and the room id",
            'set url = "https://ACCESS_TOKEN@matrix.example.org/!roomid:example.org"',
        )
    if channel == "ntfy" and not parts.path.strip("/"):
        raise f.fail("url", "an ntfy url names the topic", 'set url = "https://ntfy.sh/TOPIC"')
    recipients = f.strings("recipients", required=channel == "email")
    for r in recipients:
        if not _EMAIL_RE.match(r):
            raise f.fail("recipients", f"{r!r} is not an e-mail address", 'write "a@b.org"')
    sub_topics = f.strings("topics", required=True)
    if topics is not None:
        for t in sub_topics:
            if t not in topics:
                close = difflib.get_close_matches(t, list(topics), n=1)
                fix = f"did you mean {close[0]!r}?" if close else "name a topic of topics.toml"
                raise f.fail("topics", f"unknown topic {t!r}", fix)
    frequency = f.string("frequency", "daily")
    if frequency not in FREQUENCIES:
        raise f.fail("frequency", f"must be one of {', '.join(FREQUENCIES)}", 'set "daily"')
    timezone = f.string("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise f.fail(
            "timezone", f"unknown time zone {timezone!r}", 'use an IANA name, "Europe/Brussels"'
        ) from None
    at_text = f.string("at", "07:00")
    try:
        at = time.fromisoformat(at_text)
    except ValueError:
        raise f.fail("at", f"{at_text!r} is not a time", 'write "07:30" (24-hour clock)') from None
    day_text = f.string("day", "monday").lower()
    if day_text not in DAYS:
        raise f.fail("day", f"{day_text!r} is not a day of the week", 'write "monday"')
    return Subscription(
        name=name,
        recipients=tuple(recipients),
        topics=tuple(sub_topics),
        min_score=f.number("min_score", 0.0, 0.0, 1.0),
        frequency=frequency,
        at=at.replace(tzinfo=None),
        day=DAYS.index(day_text),
        timezone=timezone,
        max_items=int(f.number("max_items", 20, 1, 500, whole=True)),
        languages=tuple(lang.lower() for lang in f.strings("languages")),
        backfill_days=int(f.number("backfill_days", 3, 0, 365, whole=True)),
        channel=channel,
        url=url,
    )


class _Fields:
    """Typed reads of one subscription table; errors name the file and the key."""

    def __init__(self, path: str | Path, key: str, entry: Mapping[str, Any]) -> None:
        self.path, self.key, self.entry = path, key, entry

    def fail(self, name: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.path, f"{self.key}.{name}", problem, fix)

    def string(self, name: str, default: str | None) -> str:
        value = self.entry.get(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                name, f"must be a non-empty string, got {value!r}", f'set {name} = "..."'
            )
        return value.strip()

    def strings(self, name: str, *, required: bool = False) -> list[str]:
        value = self.entry.get(name, [])
        ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        if not ok or (required and not value):
            raise self.fail(
                name, f"must be a non-empty list of strings, got {value!r}", f'set {name} = ["..."]'
            )
        return [v.strip() for v in value]

    def number(
        self, name: str, default: float, lo: float, hi: float, *, whole: bool = False
    ) -> float:
        value = self.entry.get(name, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
        if ok and whole and not isinstance(value, int):
            ok = False
        if not ok:
            kind = "a whole number" if whole else "a number"
            raise self.fail(
                name,
                f"must be {kind} from {lo:g} to {hi:g}, got {value!r}",
                f"set {name} = {default}",
            )
        return float(value)


__all__ = [
    "DAYS",
    "FREQUENCIES",
    "KEYS",
    "Subscription",
    "is_due",
    "load_alerts",
    "next_due",
    "subscription_from",
]
