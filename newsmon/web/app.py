"""The reading room: a web app over the warehouse (``newsmon web``; docs/web.md).

Pages, all server-rendered (Jinja2, autoescaped; no JavaScript): stories (``/``, read state per
user), one article with why it matched, its other copies and relevant / not relevant buttons
(``/articles/ID``), full-text search with saved searches (``/search``), the feeds' health and
adding a feed (``/feeds``), and Atom feeds per topic and saved search. The Alerts pages and the
unsubscribe link are :mod:`newsmon.web.alerts`; what every page shares (connections, templates,
refusals) is :mod:`newsmon.web.room`; who may do what, :mod:`newsmon.web.security`. All SQL is in
:mod:`newsmon.warehouse`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import parse_qs, urlencode

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsmon.core.errors import NewsmonError, WarehouseLockedError
from newsmon.web import alerts as web_alerts
from newsmon.web import atom
from newsmon.web import feeds as web_feeds
from newsmon.web.alerts import UNSUBSCRIBE
from newsmon.web.room import TEMPLATES, Refused, Room, WebConfig, score_words
from newsmon.web.security import (
    CSRF_COOKIE,
    HEADERS,
    LOCAL_USER,
    basic_user,
    csrf_ok,
    new_nonce,
)

MAX_PAGE = 10_000
MAX_FORM_BYTES = 64 * 1024  # every form here is a few short fields
MAX_FORM_FIELDS = 40  # the Alerts form: a dozen fields and a box per topic
PER_PAGE = (20, 50, 100)
MAX_PAGE_IDS = 100  # articles one "mark read" may name: a page of stories
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a saved search's name


def create_app(config: WebConfig) -> FastAPI:
    from newsmon.warehouse import readers, reading
    from newsmon.warehouse.labels import Label, UnknownArticleError, add_label, resolve_article
    from newsmon.warehouse.search import SearchOptions, search

    app = FastAPI(title="newsmon", docs_url=None, redoc_url=None, openapi_url=None)
    room = Room(config)

    def user_of(request: Request) -> str:
        access = config.access
        if access.users:
            name = basic_user(request.headers.get("authorization", ""), access.users)
            if name is not None:
                return name
            raise Refused(401, "Sign in.", {"WWW-Authenticate": 'Basic realm="newsmon"'})
        if access.user_header:
            name = request.headers.get(access.user_header, "").strip()
            if not name:
                raise Refused(401, f"The proxy did not say who you are ({access.user_header}).")
            return name
        return LOCAL_USER

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
        except Refused as refused:
            response = room.refusal(refused)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE, request.state.nonce, httponly=True, samesite="strict", path="/"
            )
        response.headers.update(HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _check_csrf(request: Request) -> None:
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise Refused(403, "Refused: a form posted from another site.")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "Refused: that form is too large.")
        try:
            fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise Refused(413, "Refused: that form has too many fields.") from None
        request.state.fields = fields
        request.state.form = {k: v[0] for k, v in fields.items()}
        if not csrf_ok(
            config.secret,
            request.state.user,
            request.cookies.get(CSRF_COOKIE),
            request.state.form.get("csrf"),
        ):
            raise Refused(403, "Refused: this form has expired or did not come from newsmon.")

    @app.exception_handler(Refused)
    async def refused_handler(request: Request, exc: Refused) -> Response:
        return room.refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_value(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()})
        return room.refusal(Refused(400, f"This address has a bad value for: {', '.join(names)}."))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        words = {404: "No such page.", 405: "That is not how this page is used."}
        message = words.get(exc.status_code, f"Refused ({exc.status_code}).")
        return room.refusal(Refused(exc.status_code, message))

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
        with room.reader() as con:
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
        return room.page(
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
        with room.reader() as con:
            view = reading.article(con, article_id)
        if view is None:
            raise Refused(404, "No such article in this warehouse.")
        read = False
        try:  # opening it marks it read; never worth a wait (the page shows the state)
            with room.writer(wait_s=0.2) as con:
                readers.mark(con, request.state.user, [article_id])
            read = True
        except WarehouseLockedError:
            with suppress(Refused), room.reader() as con:
                read = readers.is_read(con, request.state.user, article_id)
        return room.page(request, "article.html.j2", article=view, labelled=labelled, read=read)

    @app.post("/read")
    def mark_read(request: Request) -> Response:
        """Mark articles read or unread (``ids``: comma-separated), then back to ``back``."""
        form = request.state.form
        ids = [i for i in form.get("ids", "").split(",") if i][:MAX_PAGE_IDS]
        back = form.get("back", "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"  # only pages of this app: never an open redirect
        try:
            with room.writer() as con:
                readers.mark(con, request.state.user, ids, form.get("read", "1") == "1")
        except WarehouseLockedError:
            return room.busy(request, "the read marks")
        return RedirectResponse(back, status_code=303)

    @app.post("/articles/{article_id}/label")
    def label(request: Request, article_id: str) -> Response:
        topic = request.state.form.get("topic", "")
        verdict = request.state.form.get("verdict", "")
        if topic not in config.topics or verdict not in ("relevant", "not_relevant"):
            raise Refused(400, "Unknown topic or verdict.")
        try:
            with room.writer() as con:
                try:  # resolve_article also accepts a unique prefix; a label needs this very id
                    known = resolve_article(con, article_id)[0] == article_id
                except UnknownArticleError:
                    known = False
                if not known:
                    raise Refused(404, "No such article in this warehouse: nothing was recorded.")
                add_label(
                    con,
                    Label(article_id, topic, verdict == "relevant", None, request.state.user),
                )
        except WarehouseLockedError:
            return room.page(
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
        request: Request,
        q: str = "",
        topic: str = "",
        saved: str = "",
        language: str = "",
        source: str = "",
        since: str = "",
        until: str = "",
    ) -> HTMLResponse:
        facets = SearchOptions(
            topic=topic or None, limit=50, language=language or None, source=source or None,
            since=_day(since), until=_day(until),
        )  # fmt: skip
        with room.reader() as con:
            rows, error = run_search(con, q, facets)
            mine = readers.saved_searches(con, request.state.user)
            offered = reading.facets(con)
        return room.page(
            request, "search.html.j2", q=q, topic=topic, rows=rows, error=error, saved=saved,
            searches=mine, facets=offered, wanted=facets,
        )  # fmt: skip

    def run_search(
        con: duckdb.DuckDBPyConnection, q: str, options: SearchOptions
    ) -> tuple[list[dict[str, Any]], str | None]:
        if not q.strip():
            return [], None
        try:
            result = search(con, q, options)
        except NewsmonError as exc:
            return [], str(exc)
        return [dict(zip(result.columns, r, strict=True)) for r in result.rows], None

    @app.post("/searches")
    def save_search(request: Request) -> Response:
        form = request.state.form
        name, q, topic = (form.get(k, "").strip() for k in ("name", "q", "topic"))
        if not _NAME.match(name) or not q or (topic and topic not in config.topics):
            raise Refused(
                400, "A saved search needs words and a simple name (letters, digits, - _)."
            )
        try:
            with room.writer() as con:
                readers.save_search(con, request.state.user, name, q, topic or None)
        except WarehouseLockedError:
            return room.busy(request, "the search")
        back = {"q": q, "topic": topic, "saved": name}
        return RedirectResponse(f"/search?{urlencode(back)}", status_code=303)

    @app.post("/searches/{name}/delete")
    def delete_search(request: Request, name: str) -> Response:
        try:
            with room.writer() as con:
                found = readers.delete_search(con, request.state.user, name)
        except WarehouseLockedError:
            return room.busy(request, "that change")
        if not found:
            raise Refused(404, "No such saved search: nothing was changed.")
        return RedirectResponse("/search", status_code=303)

    @app.get("/searches/{name}.atom")
    def search_feed(request: Request, name: str) -> Response:
        with room.reader() as con:
            found = readers.saved_search(con, request.state.user, name)
            if found is None:
                raise Refused(404, "No such saved search.")
            rows, _ = run_search(con, found.query, SearchOptions(topic=found.topic, limit=50))
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
        return Response(body, media_type=atom.MEDIA_TYPE)

    @app.get("/feeds", response_class=HTMLResponse)
    def feeds(request: Request, added: str = "") -> HTMLResponse:
        return feeds_page(request, added=added)

    def feeds_page(request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        with room.reader() as con:
            health = reading.feeds_health(con)
        return room.page(
            request, "feeds.html.j2", status=status, feeds=health, can_add=bool(config.feeds_path),
            **values,
        )  # fmt: skip

    @app.post("/feeds")
    def add_feed(request: Request) -> Response:
        """Add the feed at a URL, or the one a site's home page links, to feeds.toml."""
        url = request.state.form.get("url", "").strip()
        name = request.state.form.get("name", "").strip()
        if config.feeds_path is None:
            raise Refused(404, "This reading room cannot add feeds (no feeds file).")
        result = web_feeds.add(config.feeds_path, url, name, config.settings, room.feeds_lock)
        if result.error:
            return feeds_page(request, 400, error=result.error, url=url, name=name)
        return RedirectResponse(f"/feeds?{urlencode({'added': result.message})}", status_code=303)

    @app.get("/topics/{name}.atom")
    def topic_feed(request: Request, name: str) -> Response:
        if name not in config.topics:
            raise Refused(404, "No such topic.")
        with room.reader() as con:
            found = reading.story_page(con, reading.StoryFilter(topic=name, per_page=50))
        base = str(request.base_url).rstrip("/")
        body = atom.topic_feed(name, found.rows, base)
        return Response(body, media_type=atom.MEDIA_TYPE)

    web_alerts.add_routes(app, room)

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
