"""The Alerts pages: subscriptions as the reading room shows and edits them, their Atom feeds,
and the digests' one-click unsubscribe link.

The form has alerts.toml's keys; :func:`entry_from_form` turns its fields into the table a file
would hold, and :func:`newsmon.core.alerts.subscription_from` validates it exactly as it would
a file's entry, so the rules (and the error words, naming the field and the fix) are the same.
A webhook's address is a credential: the edit form never shows it, and an empty field keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from newsmon.core.alerts import CHANNELS, DAYS, FREQUENCIES, Subscription, subscription_from
from newsmon.core.errors import ConfigError, WarehouseLockedError
from newsmon.core.signing import read_unsubscribe_token
from newsmon.warehouse.subscriptions import STORED_KEYS
from newsmon.web import atom
from newsmon.web.room import Refused, Room

SOURCE = "Alerts form"
UNSUBSCRIBE = "/unsubscribe/"  # + a signed token (core.signing): open to anyone holding one
FIELDS = STORED_KEYS  # alerts.toml's keys but backfill_days (3 for these)
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
    url = shown["url"] or (stored_url if entry["channel"] != "email" else "")
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


def add_routes(app: FastAPI, room: Room) -> None:
    """The Alerts pages, each subscription's Atom feed, and the one-click unsubscribe."""
    from newsmon.extractors.netguard import AddressPolicy, url_refusal
    from newsmon.warehouse import reading, subscriptions

    config = room.config

    @app.get("/alerts/{name}.atom")
    def subscription_feed(request: Request, name: str) -> Response:
        in_file, _ = file_subscriptions(config.alerts_path, config.topics)
        subs = [s for s in in_file if s.name == name]
        with room.reader() as con:
            stored = [] if subs else subscriptions.stored(con, name)
            if stored:
                with suppress(ConfigError):
                    subs = [validate(stored[0].entry, config.topics, ())]
            if not subs:
                raise Refused(404, "No such subscription.")
            sub = subs[0]
            wanted = reading.StoryFilter(
                topics=sub.topics, languages=sub.languages, min_score=sub.min_score, per_page=50
            )
            found = reading.story_page(con, wanted)
        base = str(request.base_url).rstrip("/")
        body = atom.stories_feed(
            f"/alerts/{name}.atom", f"newsmon alert: {name}", "/alerts", found.rows, base
        )
        return Response(body, media_type=atom.MEDIA_TYPE)

    # ------------------------------------------------------------------ alerts

    def alerts_page(request: Request, status: int = 200, **extra: Any) -> HTMLResponse:
        in_file, file_error = file_subscriptions(config.alerts_path, config.topics)
        with room.reader() as con:
            stored = subscriptions.stored(con)
            left = subscriptions.unsubscribed(con)
        return room.page(
            request,
            "alerts.html.j2",
            status=status,
            in_file=in_file,
            file_error=file_error,
            alerts_file=config.alerts_path,
            stored=stored,
            left=left,
            **extra,
        )

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request, done: str = "") -> HTMLResponse:
        return alerts_page(request, done=done)

    @app.get("/alerts/new", response_class=HTMLResponse)
    def new_alert(request: Request) -> HTMLResponse:
        return room.page(request, "alert_form.html.j2", form=blank_form(config.topics))

    @app.get("/alerts/{name}/edit", response_class=HTMLResponse)
    def edit_alert(request: Request, name: str) -> HTMLResponse:
        with room.reader() as con:
            found = subscriptions.stored(con, name)
        if not found:
            raise Refused(404, "No such subscription made here (alerts.toml's are edited there).")
        return room.page(request, "alert_form.html.j2", form=form_of(found[0].entry))

    @app.post("/alerts")
    def create_alert(request: Request) -> Response:
        return save_alert(request, None)

    @app.post("/alerts/{name}")
    def update_alert(request: Request, name: str) -> Response:
        return save_alert(request, name)

    def save_alert(request: Request, name: str | None) -> Response:
        stored_url = ""
        if name is not None:
            with room.reader() as con:
                found = subscriptions.stored(con, name)
            if not found:
                raise Refused(404, "No such subscription made here: nothing was saved.")
            stored_url = str(found[0].entry.get("url", ""))
        entry, shown = entry_from_form(request.state.fields, name=name, stored_url=stored_url)
        in_file, _ = file_subscriptions(config.alerts_path, config.topics)
        editing = name is not None

        def again(error: str, status: int) -> HTMLResponse:
            form = AlertForm(shown, error, editing)
            return room.page(request, "alert_form.html.j2", status=status, form=form)

        try:
            sub = validate(entry, config.topics, {s.name for s in in_file})
        except ConfigError as exc:
            return again(str(exc), 400)
        if sub.channel != "email":  # a user's webhook obeys the feeds' address policy (SSRF)
            why = url_refusal(AddressPolicy.of(config.settings), sub.url)
            if why is not None:
                return again(f"{SOURCE}: url: {why}. Fix: give the service's public address", 400)
        try:
            with room.writer() as con:
                saved = subscriptions.save(con, sub, request.state.user, new=not editing)
        except WarehouseLockedError:
            return again("The warehouse is busy with an ingest: NOT saved. Try again.", 503)
        if not saved:
            return again(f"Name taken: there is already a subscription {sub.name!r}.", 409)
        return RedirectResponse(f"/alerts?{urlencode({'done': sub.name})}", status_code=303)

    @app.post("/alerts/{name}/{action}")
    def alert_action(request: Request, name: str, action: str) -> Response:
        recipient = request.state.form.get("recipient", "")
        user = request.state.user
        if action not in ("pause", "resume", "delete") and not (
            action == "resubscribe" and recipient
        ):
            raise Refused(404, "No such page.")  # (before the warehouse is opened for writing)
        try:
            with room.writer() as con:
                if action in ("pause", "resume"):
                    changed = subscriptions.set_paused(con, name, action == "pause", user)
                elif action == "delete":
                    changed = subscriptions.delete(con, name)
                else:
                    changed = subscriptions.resubscribe(con, name, recipient)
        except WarehouseLockedError:
            return room.busy(request, "that change")
        if not changed:
            raise Refused(404, "No such subscription here: nothing was changed.")
        return RedirectResponse(f"/alerts?{urlencode({'done': name})}", status_code=303)

    # ------------------------------------------------------------------ unsubscribe

    def unsubscribe_target(token: str) -> tuple[str, str]:
        target = read_unsubscribe_token(config.secret, token)
        if target is None:
            raise Refused(
                400,
                "This unsubscribe link is not valid (cut short, edited, or from another "
                "newsmon): nothing was changed. Use the link in the digest itself.",
            )
        return target

    def unsubscribe_page(
        request: Request, token: str, target: tuple[str, str], **state: Any
    ) -> HTMLResponse:
        subscription, recipient = target
        return room.page(
            request, "unsubscribe.html.j2", subscription=subscription, recipient=recipient,
            token=token, **state,
        )  # fmt: skip

    @app.get(UNSUBSCRIBE + "{token}", response_class=HTMLResponse)
    def unsubscribe_confirm(request: Request, token: str) -> HTMLResponse:
        target = subscription, recipient = unsubscribe_target(token)
        with room.reader() as con:
            left = bool(subscriptions.unsubscribed_from(con, subscription, [recipient]))
        return unsubscribe_page(request, token, target, done=left)

    @app.post(UNSUBSCRIBE + "{token}", response_class=HTMLResponse)
    def unsubscribe(request: Request, token: str) -> HTMLResponse:
        target = subscription, recipient = unsubscribe_target(token)
        try:
            with room.writer() as con:
                subscriptions.unsubscribe(con, subscription, recipient, "link")
        except WarehouseLockedError:
            return unsubscribe_page(request, token, target, status=503, done=False, busy=True)
        return unsubscribe_page(request, token, target, done=True)


__all__ = [
    "UNSUBSCRIBE",
    "AlertForm",
    "add_routes",
    "blank_form",
    "entry_from_form",
    "file_subscriptions",
    "form_of",
    "validate",
]
