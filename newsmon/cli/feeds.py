"""``newsmon feeds``: list, add, remove, import, export and check the feeds file."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsmon.cli.options import (
    UserError,
    current_settings,
    db_option,
    feeds_option,
    handle_errors,
    resolve_db,
)
from newsmon.cli.render import render
from newsmon.core.errors import ConfigError
from newsmon.core.progress import reporting

if TYPE_CHECKING:
    from newsmon.extractors.discover import Discovery


# --- feeds ----------------------------------------------------------------------------------


def _feeds_path(feeds_file: Path | None) -> Path:

    return feeds_file or current_settings().feeds_path


@click.group()
def feeds() -> None:
    """The feed list: list, check, add, remove, import OPML, export OPML."""


@feeds.command(name="list")
@db_option
@feeds_option
@handle_errors
def feeds_list(db: Path | None, feeds_file: Path | None) -> None:
    """Each configured feed with its health: status, last success, error streak, next poll."""
    from newsmon.core.settings import load_feeds
    from newsmon.warehouse.polls import feed_id_for
    from newsmon.warehouse.store import connect, run_query

    configured = load_feeds(_feeds_path(feeds_file))
    db_path = resolve_db(db)
    health: dict[str, tuple[Any, ...]] = {}
    if db_path.exists():
        with connect(db_path, read_only=True) as con:
            table = run_query(
                con,
                """
                SELECT feed_id, last_status, last_reason, last_success_at, error_streak,
                       strftime(next_poll_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M'),
                       schedule_reason
                FROM feeds
                """,
            )
        health = {row[0]: row[1:] for row in table.rows}
    columns = ["name", "status", "reason", "last_success", "error_streak", "next_poll_utc", "why"]
    rows = []
    for f in configured:
        h = health.get(feed_id_for(f.url))
        rows.append((f.name, *(h if h else ("never polled", None, None, 0, "now", None))))
    click.echo(render(columns, rows))


@feeds.command(name="add")
@feeds_option
@click.argument("url")
@click.option("--name", default=None, help="Display name [default: the feed's own title].")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for several).")
@click.option("--language", default=None, help="Language of the feed's items, e.g. en.")
@click.option("--interval", type=int, default=None, help="Poll every N minutes (else adaptive).")
@handle_errors
def feeds_add(
    feeds_file: Path | None,
    url: str,
    name: str | None,
    tags: tuple[str, ...],
    language: str | None,
    interval: int | None,
) -> None:
    """Check the feed at URL once and add it to the feeds file.

    URL may also be a site's page (its home page): the first feed the page links with
    <link rel="alternate"> that answers as a feed is added.
    """
    from newsmon.extractors.urls import is_http_url
    from newsmon.feedlist import add_feeds

    path = _feeds_path(feeds_file)
    if not is_http_url(url):
        raise UserError(
            ConfigError(
                url,
                "",
                "not added: only http(s) feeds can be added",
                f"list a local file in {path} yourself if you mean it",
            )
        )
    found = _discover(url)
    if found.poll is None:
        raise UserError(
            ConfigError(
                url,
                "",
                f"not added: {found.reason}: {found.error or ''}".rstrip(": "),
                "check the URL",
            )
        )
    if found.discovered:
        click.echo(found.message)
    result = add_feeds(path, [found.as_feed(name, tags, language, interval)])
    for f in result.added:
        click.echo(f"Added {f.name!r} ({f.url}) to {path}.")
    for f, why in result.skipped:
        click.echo(f"Not added {f.name!r}: {why} in {path}.")


@feeds.command(name="remove")
@feeds_option
@click.argument("name_or_url")
@handle_errors
def feeds_remove(feeds_file: Path | None, name_or_url: str) -> None:
    """Remove a feed (by name or URL) from the feeds file; its stored articles stay."""
    from newsmon.feedlist import remove_feed

    path = _feeds_path(feeds_file)
    removed = remove_feed(path, name_or_url)
    click.echo(f"Removed {removed.name!r} ({removed.url}) from {path}.")


@feeds.command(name="import")
@feeds_option
@click.argument("opml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Fetch each feed first and add only those that answer as feeds.",
)
@handle_errors
def feeds_import(feeds_file: Path | None, opml: Path, check: bool) -> None:
    """Add the feeds of an OPML file (a feed reader's export) to the feeds file."""
    from newsmon.extractors.urls import is_http_url
    from newsmon.feedlist import add_feeds, parse_opml

    path = _feeds_path(feeds_file)
    found = parse_opml(opml)
    # a stranger's reading list may name local files (a token, a FIFO): http(s) feeds only; a
    # local feed is something the operator writes into the feeds file themselves
    broken: list[tuple[Any, str]] = [
        (f, "not an http(s) URL (local files only from the feeds file itself)")
        for f in found
        if not is_http_url(f.url)
    ]
    found = [f for f in found if is_http_url(f.url)]
    if check:
        with reporting("import: feeds checked"):
            polls = _check_many([f.url for f in found])
        answering = []
        for f, poll in zip(found, polls, strict=True):
            if poll.status == "failed":
                broken.append((f, f"{poll.reason}: {poll.error or ''}".rstrip(": ")))
            else:
                answering.append(f)
        found = answering
    result = add_feeds(path, found)
    click.echo(
        f"{len(found) + len(broken)} feeds in {opml}: {len(result.added)} added, "
        f"{len(result.skipped)} already listed, {len(broken)} refused or not answering as feeds."
    )
    for f, why in [*result.skipped, *broken]:
        click.echo(f"  skipped {f.name!r}: {why}")


@feeds.command(name="export")
@feeds_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), required=False)
@handle_errors
def feeds_export(feeds_file: Path | None, out: Path | None) -> None:
    """Write the feed list as OPML 2.0 (to OUT, or to standard output)."""
    from newsmon.core.settings import load_feeds
    from newsmon.feedlist import to_opml

    text = to_opml(load_feeds(_feeds_path(feeds_file)))
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}.")


@feeds.command(name="check")
@click.argument("url")
@handle_errors
def feeds_check(url: str) -> None:
    """Fetch and parse one feed now, store nothing, and say what newsmon makes of it.

    URL may also be a site's page: then the feed it links (<link rel="alternate">) is checked.
    """
    found = _discover(url)
    if found.poll is None:
        code = f" HTTP {found.http_status}" if found.http_status else ""
        click.echo(f"{url}: failed: {found.reason}{code}: {found.error or ''}".rstrip(": "))
        sys.exit(1)
    feed = found.poll.feed
    assert feed is not None
    if found.discovered:
        click.echo(found.message)
        url = found.poll.target.url
    click.echo(f"{url}: ok, {feed.format or 'unknown format'}, {len(feed.entries)} entries")
    click.echo(f"  title: {feed.title or '(none)'}; language: {feed.language or '(none)'}")
    if feed.ttl_minutes:
        click.echo(f"  asks to be polled at most every {feed.ttl_minutes} minutes (ttl)")
    if feed.bozo:
        click.echo(f"  malformed but readable: {feed.bozo_message}")
    for e in feed.entries[:5]:
        click.echo(f"  - {e.title or e.link or e.guid}")


def _discover(url: str) -> Discovery:
    """The feed at URL, or the one the page at URL links (newsmon.extractors.discover)."""
    from newsmon.extractors.discover import find_feed
    from newsmon.extractors.fetch import FetchOptions

    settings = current_settings()
    return find_feed(url, FetchOptions.of(settings), settings.max_feed_items)


def _check_many(urls: Sequence[str], chunk: int = 20) -> list[Any]:
    """Poll feeds once (concurrently, ``chunk`` at a time, reporting progress); store nothing."""
    from newsmon.core.progress import advance
    from newsmon.extractors.fetch import FetchOptions
    from newsmon.extractors.pipeline import FeedTarget, poll_feeds

    settings = current_settings()
    options = FetchOptions.of(settings)
    polls: list[Any] = []
    for i in range(0, len(urls), chunk):
        targets = [FeedTarget(f"check-{j}", u) for j, u in enumerate(urls[i : i + chunk], i)]
        polls.extend(poll_feeds(targets, options, settings.max_feed_items))
        advance(len(targets), len(urls))
    return polls
