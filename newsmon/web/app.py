"""The reading room: a web app over the warehouse (``newsmon web``; docs/web.md).

Pages, all server-rendered (Jinja2, autoescaped; no JavaScript): stories (``/``), one article
with why it matched, its other copies and relevant / not relevant buttons (``/articles/ID``),
full-text search (``/search``), the feeds' health (``/feeds``) and an Atom feed per topic
(``/topics/TOPIC.atom``). All SQL is in :mod:`newsmon.warehouse.reading`.

The warehouse is opened per request, read-only, and an ingest may hold it (DuckDB allows one
writer): a page waits at most ``read_wait_s`` for it, then answers 503 "busy, try again" with
``Retry-After``; a label waits as long, then says it was not saved, with the button to try again
(never a silent loss).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsmon.core.errors import ConfigError, NewsmonError, WarehouseLockedError
from newsmon.core.paths import DEFAULT_CONFIG_DIR
from newsmon.core.signing import read_unsubscribe_token
from newsmon.web import alerts as web_alerts
from newsmon.web import atom
from newsmon.web.security import (
    CSRF_COOKIE,
    HEADERS,
    LOCAL_USER,
    Access,
    basic_user,
    csrf_ok,
    csrf_token,
    new_nonce,
)

TEMPLATES = DEFAULT_CONFIG_DIR / "templates" / "web"
MAX_PAGE = 10_000
MAX_FORM_BYTES = 64 * 1024  # every form here is a few short fields
MAX_FORM_FIELDS = 40  # the Alerts form: a dozen fields and a box per topic
PER_PAGE = (20, 50, 100)
MAX_PAGE_IDS = 100  # articles one "mark read" may name: a page of stories
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a saved search's name
UNSUBSCRIBE = "/unsubscribe/"  # + a signed token (core.signing): open to anyone holding one


@dataclass(frozen=True)
class WebConfig:
    db_path: Path
    topics: tuple[str, ...]  # the topics an article can be labelled for
    secret: bytes
    access: Access = field(default_factory=Access)
    read_wait_s: float = 1.5
    alerts_path: Path | None = None  # alerts.toml, shown read-only beside the stored ones


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _Gate:
    """Pages share the warehouse, a write has it alone, within this process.

    DuckDB refuses a read-write connection to a file while the same process holds a read-only
    one (and the reverse): "Can't open a connection to same database file with a different
    configuration". Without this, a label posted while another request read a page failed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self, wait_s: float) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._writing, wait_s):
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
            if not self._cond.wait_for(lambda: not self._writing and not self._readers, wait_s):
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


def create_app(config: WebConfig) -> FastAPI:
    from newsmon.warehouse import readers, reading, subscriptions
    from newsmon.warehouse.labels import Label, UnknownArticleError, add_label, resolve_article
    from newsmon.warehouse.search import SearchOptions, search
    from newsmon.warehouse.store import connect

    app = FastAPI(title="newsmon", docs_url=None, redoc_url=None, openapi_url=None)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["words"] = score_words
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M UTC") if d else "—"

    gate = _Gate()

    @contextmanager
    def reader() -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            with (
                gate.reading(config.read_wait_s),
                connect(config.db_path, read_only=True, wait_s=config.read_wait_s) as con,
            ):
                yield con
        except WarehouseLockedError:
            raise _Refused(
                503,
                "The warehouse is busy with an ingest: try again in a few seconds.",
                {"Retry-After": "5"},
            ) from None

    @contextmanager
    def writer(wait_s: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection (WarehouseLockedError if an ingest, or this app's own pages,
        hold the file longer than ``wait_s``, by default ``read_wait_s``)."""
        wait = config.read_wait_s if wait_s is None else wait_s
        with gate.writing(wait), connect(config.db_path, wait_s=wait) as con:
            yield con

    def user_of(request: Request) -> str:
        access = config.access
        if access.users:
            name = basic_user(request.headers.get("authorization", ""), access.users)
            if name is not None:
                return name
            raise _Refused(401, "Sign in.", {"WWW-Authenticate": 'Basic realm="newsmon"'})
        if access.user_header:
            name = request.headers.get(access.user_header, "").strip()
            if not name:
                raise _Refused(401, f"The proxy did not say who you are ({access.user_header}).")
            return name
        return LOCAL_USER

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        user = request.state.user
        nonce = request.cookies.get(CSRF_COOKIE) or request.state.nonce
        html = env.get_template(template).render(
            user=user,
            csrf=csrf_token(config.secret, user, nonce),
            topics=config.topics,
            request_path=request.url.path,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response: Response
        request.state.nonce = new_nonce()
        try:
            if request.url.path.startswith(UNSUBSCRIBE):
                # the link's signed token is the whole authority: no login, no form token (a
                # mail client posts it from elsewhere, RFC 8058), and it can do nothing else
                request.state.user = ""
            else:
                request.state.user = await run_in_threadpool(user_of, request)
                if request.method == "POST":
                    await _check_csrf(request)
            response = await call_next(request)
        except _Refused as refused:
            response = _refusal(refused)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE, request.state.nonce, httponly=True, samesite="strict", path="/"
            )
        response.headers.update(HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _check_csrf(request: Request) -> None:
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise _Refused(403, "Refused: a form posted from another site.")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "Refused: that form is too large.")
        try:
            fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise _Refused(413, "Refused: that form has too many fields.") from None
        request.state.fields = fields
        request.state.form = {k: v[0] for k, v in fields.items()}
        if not csrf_ok(
            config.secret,
            request.state.user,
            request.cookies.get(CSRF_COOKIE),
            request.state.form.get("csrf"),
        ):
            raise _Refused(403, "Refused: this form has expired or did not come from newsmon.")

    def _refusal(refused: _Refused) -> Response:
        html = env.get_template("error.html.j2").render(
            message=refused.message, user=None, csrf="", topics=(), request_path=""
        )
        return HTMLResponse(html, status_code=refused.status, headers=refused.headers)

    @app.exception_handler(_Refused)
    async def refused_handler(request: Request, exc: _Refused) -> Response:
        return _refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_value(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()})
        return _refusal(_Refused(400, f"This address has a bad value for: {', '.join(names)}."))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        words = {404: "No such page.", 405: "That is not how this page is used."}
        message = words.get(exc.status_code, f"Refused ({exc.status_code}).")
        return _refusal(_Refused(exc.status_code, message))

    @app.get("/", response_class=HTMLResponse)
    def stories(
        request: Request,
        topic: str = "",
        language: str = "",
        source: str = "",
        since: str = "",
        until: str = "",
        min_score: float = 0.0,
        order: str = "newest",
        page_no: int = 1,
        per_page: int = 50,
        unread: str = "",
    ) -> HTMLResponse:
        wanted = reading.StoryFilter(
            topic=topic or None,
            language=language or None,
            source=source or None,
            since=_day(since),
            until=_day(until),
            min_score=min(max(min_score, 0.0), 1.0),
            order=order if order in reading.ORDERS else "newest",
            page=min(max(page_no, 1), MAX_PAGE),
            per_page=per_page if per_page in PER_PAGE else 50,
            reader=request.state.user,
            unread_only=bool(unread),
        )
        with reader() as con:
            found = reading.story_page(con, wanted)
            offered = reading.facets(con)
        query = {
            k: v
            for k, v in {
                "topic": topic,
                "language": language,
                "source": source,
                "since": since,
                "until": until,
                "min_score": min_score or "",
                "order": wanted.order,
                "per_page": wanted.per_page,
                "unread": "1" if unread else "",
            }.items()
            if v
        }
        return page(
            request,
            "stories.html.j2",
            found=found,
            wanted=wanted,
            facets=offered,
            query=query,
            page_link=lambda n: "/?" + urlencode({**query, "page_no": n}),
            here="/?" + urlencode({**query, "page_no": wanted.page}),
        )

    @app.get("/articles/{article_id}", response_class=HTMLResponse)
    def article(request: Request, article_id: str, labelled: str = "") -> HTMLResponse:
        with reader() as con:
            view = reading.article(con, article_id)
        if view is None:
            raise _Refused(404, "No such article in this warehouse.")
        read = False
        try:  # opening it marks it read; never worth a wait (the page shows the state)
            with writer(wait_s=0.2) as con:
                readers.mark(con, request.state.user, [article_id])
            read = True
        except WarehouseLockedError:
            with suppress(_Refused), reader() as con:
                read = readers.is_read(con, request.state.user, article_id)
        return page(request, "article.html.j2", article=view, labelled=labelled, read=read)

    @app.post("/read")
    def mark_read(request: Request) -> Response:
        """Mark articles read or unread (``ids``: comma-separated), then back to ``back``."""
        form = request.state.form
        ids = [i for i in form.get("ids", "").split(",") if i][:MAX_PAGE_IDS]
        back = form.get("back", "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"  # only pages of this app: never an open redirect
        try:
            with writer() as con:
                readers.mark(con, request.state.user, ids, form.get("read", "1") == "1")
        except WarehouseLockedError:
            return busy(request, "the read marks")
        return RedirectResponse(back, status_code=303)

    @app.post("/articles/{article_id}/label")
    def label(request: Request, article_id: str) -> Response:
        topic = request.state.form.get("topic", "")
        verdict = request.state.form.get("verdict", "")
        if topic not in config.topics or verdict not in ("relevant", "not_relevant"):
            raise _Refused(400, "Unknown topic or verdict.")
        try:
            with writer() as con:
                try:  # resolve_article also accepts a unique prefix; a label needs this very id
                    known = resolve_article(con, article_id)[0] == article_id
                except UnknownArticleError:
                    known = False
                if not known:
                    raise _Refused(404, "No such article in this warehouse: nothing was recorded.")
                add_label(
                    con,
                    Label(article_id, topic, verdict == "relevant", None, request.state.user),
                )
        except WarehouseLockedError:
            return page(
                request,
                "error.html.j2",
                status=503,
                message="The warehouse is busy with an ingest: your label was NOT saved.",
                retry={
                    "action": f"/articles/{article_id}/label",
                    "topic": topic,
                    "verdict": verdict,
                },
            )
        return RedirectResponse(f"/articles/{article_id}?labelled={verdict}", status_code=303)

    @app.get("/search", response_class=HTMLResponse)
    def search_page(
        request: Request, q: str = "", topic: str = "", saved: str = ""
    ) -> HTMLResponse:
        rows, error = run_search(q, topic)
        with reader() as con:
            mine = readers.saved_searches(con, request.state.user)
        return page(
            request, "search.html.j2", q=q, topic=topic, rows=rows, error=error, saved=saved,
            searches=mine,
        )  # fmt: skip

    def run_search(q: str, topic: str) -> tuple[list[dict[str, Any]], str | None]:
        if not q.strip():
            return [], None
        try:
            with reader() as con:
                result = search(con, q, SearchOptions(topic=topic or None, limit=50))
        except _Refused:
            raise
        except NewsmonError as exc:
            return [], str(exc)
        return [dict(zip(result.columns, r, strict=True)) for r in result.rows], None

    @app.post("/searches")
    def save_search(request: Request) -> Response:
        form = request.state.form
        name, q, topic = (form.get(k, "").strip() for k in ("name", "q", "topic"))
        if not _NAME.match(name) or not q or (topic and topic not in config.topics):
            raise _Refused(
                400, "A saved search needs words and a simple name (letters, digits, - _)."
            )
        try:
            with writer() as con:
                readers.save_search(con, request.state.user, name, q, topic or None)
        except WarehouseLockedError:
            return busy(request, "the search")
        back = {"q": q, "topic": topic, "saved": name}
        return RedirectResponse(f"/search?{urlencode(back)}", status_code=303)

    @app.post("/searches/{name}/delete")
    def delete_search(request: Request, name: str) -> Response:
        try:
            with writer() as con:
                found = readers.delete_search(con, request.state.user, name)
        except WarehouseLockedError:
            return busy(request, "that change")
        if not found:
            raise _Refused(404, "No such saved search: nothing was changed.")
        return RedirectResponse("/search", status_code=303)

    @app.get("/searches/{name}.atom")
    def search_feed(request: Request, name: str) -> Response:
        with reader() as con:
            found = readers.saved_search(con, request.state.user, name)
        if found is None:
            raise _Refused(404, "No such saved search.")
        rows, _ = run_search(found.query, found.topic or "")
        base = str(request.base_url).rstrip("/")
        entries = [
            atom.Entry(
                f"urn:newsmon:article:{r['article_id']}",
                r["title"] or "(untitled)",
                f"{base}/articles/{r['article_id']}",
                datetime.combine(r["published"], time(), UTC) if r["published"] else None,
                f"{r['outlet'] or ''}; search rank bm25 {r['bm25']}",
            )
            for r in rows
        ]
        alternate = "/search?" + urlencode({"q": found.query, "topic": found.topic or ""})
        body = atom.feed(
            f"/searches/{name}.atom", f"newsmon search: {name}", alternate, entries, base
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @app.get("/alerts/{name}.atom")
    def subscription_feed(request: Request, name: str) -> Response:
        in_file, _ = web_alerts.file_subscriptions(config.alerts_path, config.topics)
        with reader() as con:
            stored = subscriptions.stored(con, name)
        subs = [s for s in in_file if s.name == name]
        if not subs and stored:
            with suppress(ConfigError):
                subs = [web_alerts.validate(stored[0].entry, config.topics, ())]
        if not subs:
            raise _Refused(404, "No such subscription.")
        sub = subs[0]
        wanted = reading.StoryFilter(
            topics=sub.topics, languages=sub.languages, min_score=sub.min_score, per_page=50
        )
        with reader() as con:
            found = reading.story_page(con, wanted)
        base = str(request.base_url).rstrip("/")
        body = atom.stories_feed(
            f"/alerts/{name}.atom", f"newsmon alert: {name}", "/alerts", found.rows, base
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @app.get("/feeds", response_class=HTMLResponse)
    def feeds(request: Request) -> HTMLResponse:
        with reader() as con:
            health = reading.feeds_health(con)
        return page(request, "feeds.html.j2", feeds=health)

    @app.get("/topics/{name}.atom")
    def topic_feed(request: Request, name: str) -> Response:
        if name not in config.topics:
            raise _Refused(404, "No such topic.")
        with reader() as con:
            found = reading.story_page(con, reading.StoryFilter(topic=name, per_page=50))
        base = str(request.base_url).rstrip("/")
        body = atom.topic_feed(name, found.rows, base)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    # ------------------------------------------------------------------ alerts

    def alerts_page(request: Request, status: int = 200, **extra: Any) -> HTMLResponse:
        in_file, file_error = web_alerts.file_subscriptions(config.alerts_path, config.topics)
        with reader() as con:
            stored = subscriptions.stored(con)
            left = subscriptions.unsubscribed(con)
        return page(
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

    def busy(request: Request, what: str, **values: Any) -> HTMLResponse:
        message = f"The warehouse is busy with an ingest: {what} was NOT saved. Try again."
        return page(request, "error.html.j2", status=503, message=message, **values)

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request, done: str = "") -> HTMLResponse:
        return alerts_page(request, done=done)

    @app.get("/alerts/new", response_class=HTMLResponse)
    def new_alert(request: Request) -> HTMLResponse:
        return page(request, "alert_form.html.j2", form=web_alerts.blank_form(config.topics))

    @app.get("/alerts/{name}/edit", response_class=HTMLResponse)
    def edit_alert(request: Request, name: str) -> HTMLResponse:
        with reader() as con:
            found = subscriptions.stored(con, name)
        if not found:
            raise _Refused(404, "No such subscription made here (alerts.toml's are edited there).")
        return page(request, "alert_form.html.j2", form=web_alerts.form_of(found[0].entry))

    @app.post("/alerts")
    def create_alert(request: Request) -> Response:
        return save_alert(request, None)

    @app.post("/alerts/{name}")
    def update_alert(request: Request, name: str) -> Response:
        return save_alert(request, name)

    def save_alert(request: Request, name: str | None) -> Response:
        stored_url = ""
        if name is not None:
            with reader() as con:
                found = subscriptions.stored(con, name)
            if not found:
                raise _Refused(404, "No such subscription made here: nothing was saved.")
            stored_url = str(found[0].entry.get("url", ""))
        entry, shown = web_alerts.entry_from_form(
            request.state.fields, name=name, stored_url=stored_url
        )
        in_file, _ = web_alerts.file_subscriptions(config.alerts_path, config.topics)
        editing = name is not None

        def again(error: str, status: int) -> HTMLResponse:
            form = web_alerts.AlertForm(shown, error, editing)
            return page(request, "alert_form.html.j2", status=status, form=form)

        try:
            sub = web_alerts.validate(entry, config.topics, {s.name for s in in_file})
        except ConfigError as exc:
            return again(str(exc), 400)
        try:
            with writer() as con:
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
        try:
            with writer() as con:
                if action in ("pause", "resume"):
                    changed = subscriptions.set_paused(con, name, action == "pause", user)
                elif action == "delete":
                    changed = subscriptions.delete(con, name)
                elif action == "resubscribe" and recipient:
                    changed = subscriptions.resubscribe(con, name, recipient)
                else:
                    raise _Refused(404, "No such page.")
        except WarehouseLockedError:
            return busy(request, "that change")
        if not changed:
            raise _Refused(404, "No such subscription here: nothing was changed.")
        return RedirectResponse(f"/alerts?{urlencode({'done': name})}", status_code=303)

    # ------------------------------------------------------------------ unsubscribe

    def unsubscribe_target(token: str) -> tuple[str, str]:
        target = read_unsubscribe_token(config.secret, token)
        if target is None:
            raise _Refused(
                400,
                "This unsubscribe link is not valid (cut short, edited, or from another "
                "newsmon): nothing was changed. Use the link in the digest itself.",
            )
        return target

    @app.get(UNSUBSCRIBE + "{token}", response_class=HTMLResponse)
    def unsubscribe_confirm(request: Request, token: str) -> HTMLResponse:
        subscription, recipient = unsubscribe_target(token)
        with reader() as con:
            left = bool(subscriptions.unsubscribed_from(con, subscription, [recipient]))
        return page(
            request,
            "unsubscribe.html.j2",
            subscription=subscription,
            recipient=recipient,
            token=token,
            done=left,
        )

    @app.post(UNSUBSCRIBE + "{token}", response_class=HTMLResponse)
    def unsubscribe(request: Request, token: str) -> HTMLResponse:
        subscription, recipient = unsubscribe_target(token)
        try:
            with writer() as con:
                subscriptions.unsubscribe(con, subscription, recipient, "link")
        except WarehouseLockedError:
            return page(
                request,
                "unsubscribe.html.j2",
                status=503,
                subscription=subscription,
                recipient=recipient,
                token=token,
                done=False,
                busy=True,
            )
        return page(
            request,
            "unsubscribe.html.j2",
            subscription=subscription,
            recipient=recipient,
            token=token,
            done=True,
        )

    @app.get("/style.css")
    def style() -> Response:
        return Response((TEMPLATES / "style.css").read_bytes(), media_type="text/css")

    return app


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


__all__ = ["WebConfig", "create_app", "score_words"]
