"""What every page of the reading room shares: its configuration, the warehouse connections
(read-only for pages, read-write for what users record), the templates, and the refusals.

The warehouse is opened per request and an ingest may hold it (DuckDB allows one writer): a page
waits at most ``read_wait_s`` for it, then answers 503 "busy, try again" with ``Retry-After``; a
write waits as long, then says what was not saved, with the button to try again (never a silent
loss). Within this process, pages and writes take turns (:class:`Gate`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from newsmon.core.errors import WarehouseLockedError
from newsmon.core.paths import DEFAULT_CONFIG_DIR
from newsmon.core.settings import Settings
from newsmon.web.security import CSRF_COOKIE, Access, csrf_token

TEMPLATES = DEFAULT_CONFIG_DIR / "templates" / "web"


@dataclass(frozen=True)
class WebConfig:
    db_path: Path
    topics: tuple[str, ...]  # the topics an article can be labelled for
    secret: bytes
    access: Access = field(default_factory=Access)
    read_wait_s: float = 1.5
    alerts_path: Path | None = None  # alerts.toml, shown read-only beside the stored ones
    feeds_path: Path | None = None  # feeds.toml: the Feeds page adds to it (None: it cannot)
    settings: Settings = field(default_factory=Settings)  # fetching a feed to add it


class Refused(Exception):
    """A request the app answers with its error page: a status, one sentence, headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Gate:
    """Pages share the warehouse, a write has it alone, within this process.

    DuckDB refuses a read-write connection to a file while the same process holds a read-only
    one (and the reverse): "Can't open a connection to same database file with a different
    configuration". Without this, a label posted while another request read a page failed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0  # writers waiting: new pages wait behind them (else pages starve them)

    @contextmanager
    def reading(self, wait_s: float) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writing and not self._waiting, wait_s):
                raise WarehouseLockedError("the reading room is writing the warehouse")
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self, wait_s: float) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                free = self._cond.wait_for(lambda: not self._writing and not self._readers, wait_s)
            finally:
                self._waiting -= 1
                self._cond.notify_all()
            if not free:
                raise WarehouseLockedError("the reading room's pages are reading the warehouse")
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def score_words(score: float, relevant: bool) -> str:
    """A match's score as a reader says it."""
    if not relevant:
        return "not a match"
    if score >= 0.9:
        return "very strong match"
    if score >= 0.75:
        return "strong match"
    if score >= 0.6:
        return "good match"
    return "weak match"


class Room:
    """The app's shared parts, handed to each group of routes."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.gate = Gate()
        self.feeds_lock = threading.Lock()  # one change of feeds.toml at a time
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["words"] = score_words
        self.env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for a page (503 "busy" if it cannot have one in time)."""
        from newsmon.warehouse.store import connect

        wait = self.config.read_wait_s
        try:
            with (
                self.gate.reading(wait),
                connect(self.config.db_path, read_only=True, wait_s=wait) as con,
            ):
                yield con
        except WarehouseLockedError:
            raise Refused(
                503,
                "The warehouse is busy with an ingest: try again in a few seconds.",
                {"Retry-After": "5"},
            ) from None

    @contextmanager
    def writer(self, wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection (WarehouseLockedError if an ingest, or this app's own pages,
        hold the file longer than ``wait_s``, by default ``read_wait_s``)."""
        from newsmon.warehouse.store import connect

        wait = self.config.read_wait_s if wait_s is None else wait_s
        with self.gate.writing(wait), connect(self.config.db_path, wait_s=wait) as con:
            yield con

    def page(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        user = request.state.user
        nonce = request.cookies.get(CSRF_COOKIE) or request.state.nonce
        html = self.env.get_template(template).render(
            user=user,
            csrf=csrf_token(self.config.secret, user, nonce),
            topics=self.config.topics,
            request_path=request.url.path,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def busy(self, request: Request, what: str, **values: Any) -> HTMLResponse:
        """A write that waited in vain: said so, NOT saved, with the way to try again."""
        message = f"The warehouse is busy with an ingest: {what} was NOT saved. Try again."
        return self.page(request, "error.html.j2", status=503, message=message, **values)

    def refusal(self, refused: Refused) -> Response:
        html = self.env.get_template("error.html.j2").render(
            message=refused.message, user=None, csrf="", topics=(), request_path=""
        )
        return HTMLResponse(html, status_code=refused.status, headers=refused.headers)


__all__ = ["Gate", "Refused", "Room", "WebConfig", "score_words"]
