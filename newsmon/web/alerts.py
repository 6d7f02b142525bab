"""The Alerts page's form: a subscription as the reading room shows and edits it.

The form has alerts.toml's keys; :func:`entry_from_form` turns its fields into the table a file
would hold, and :func:`newsmon.core.alerts.subscription_from` validates it exactly as it would
a file's entry, so the rules (and the error words, naming the field and the fix) are the same.
A webhook's address is a credential: the edit form never shows it, and an empty field keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsmon.core.alerts import CHANNELS, DAYS, FREQUENCIES, Subscription, subscription_from
from newsmon.core.errors import ConfigError

SOURCE = "Alerts form"
FIELDS = (
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
    "channel",
    "url",
)
_SPLIT = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class AlertForm:
    """What the form shows: the values as typed (strings), and what was wrong with them."""

    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    editing: bool = False  # the name is fixed; an empty url keeps the stored one

    @property
    def choices(self) -> Mapping[str, Sequence[str]]:
        return {"frequency": FREQUENCIES, "day": DAYS, "channel": CHANNELS}


def blank_form(topics: Sequence[str]) -> AlertForm:
    return AlertForm(
        {
            "name": "",
            "recipients": "",
            "topics": list(topics[:1]),
            "min_score": "0.0",
            "frequency": "daily",
            "at": "07:00",
            "day": "monday",
            "timezone": "UTC",
            "max_items": "20",
            "languages": "",
            "channel": "email",
            "url": "",
        }
    )


def form_of(entry: Mapping[str, Any]) -> AlertForm:
    """A stored subscription's entry as the edit form shows it (never its webhook address)."""
    values = {k: entry.get(k, "") for k in FIELDS}
    values["recipients"] = ", ".join(entry.get("recipients", ()))
    values["languages"] = ", ".join(entry.get("languages", ()))
    values["topics"] = list(entry.get("topics", ()))
    values["min_score"] = f"{entry.get('min_score', 0.0):g}"
    values["max_items"] = str(entry.get("max_items", 20))
    values["url"] = ""
    return AlertForm(values, editing=True)


def entry_from_form(
    fields: Mapping[str, list[str]], *, name: str | None = None, stored_url: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the entry to validate, the values to show again) from a posted form's fields.

    ``name``: the subscription being edited (the form cannot rename it); ``stored_url``: its
    webhook address, kept when the field is left empty.
    """

    def one(key: str) -> str:
        return (fields.get(key) or [""])[0].strip()

    shown: dict[str, Any] = {k: one(k) for k in FIELDS}
    shown["topics"] = [t for t in fields.get("topics", []) if t]
    if name is not None:
        shown["name"] = name
    entry: dict[str, Any] = {
        "name": shown["name"],
        "recipients": [r for r in _SPLIT.split(shown["recipients"]) if r],
        "topics": shown["topics"],
        "min_score": _number(shown["min_score"], float),
        "frequency": shown["frequency"],
        "at": shown["at"],
        "day": shown["day"],
        "timezone": shown["timezone"],
        "max_items": _number(shown["max_items"], int),
        "languages": [x for x in _SPLIT.split(shown["languages"]) if x],
        "channel": shown["channel"] or "email",
    }
    url = shown["url"] or stored_url
    if entry["channel"] != "email" or url:
        entry["url"] = url
    shown["url"] = ""  # never sent back to the browser
    return entry, shown


def _number(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # the validator names the field and says what it must be


def validate(
    entry: Mapping[str, Any], topics: Collection[str], taken: Collection[str]
) -> Subscription:
    """The subscription a form describes; ConfigError (naming the field and the fix) if not."""
    if entry.get("name") in taken:
        raise ConfigError(
            SOURCE, "name", f"{entry['name']!r} is a subscription of alerts.toml", "choose another"
        )
    return subscription_from(SOURCE, "subscription", dict(entry), topics)


def file_subscriptions(
    path: Path | None, topics: Collection[str]
) -> tuple[list[Subscription], str]:
    """alerts.toml's subscriptions for the page (read-only there), or the file's problem."""
    from newsmon.core.alerts import load_alerts

    if path is None or not path.exists():
        return [], ""
    try:
        return load_alerts(path, topics), ""
    except ConfigError as exc:
        return [], str(exc)


__all__ = [
    "AlertForm",
    "blank_form",
    "entry_from_form",
    "file_subscriptions",
    "form_of",
    "validate",
]
