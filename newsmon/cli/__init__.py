"""The ``newsmon`` command line: a thin layer over ``flows``, ``warehouse`` and ``extractors``.

Exit status (every command):
  0  done. For ``run``: the run completed, even if some feeds or pages failed (they are recorded
     in the warehouse and listed in the summary, and retried next time).
  1  the command could not do its work (the warehouse cannot be opened or written, a query failed,
     the flow crashed); the message says why.
  2  bad usage or configuration (a config file, a NEWSMON_* variable, an option): nothing was done.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsmon import __version__
from newsmon.cli.options import (
    F,
    UserError,
    _alerts_option,
    _db_option,
    _feeds_option,
    _format_option,
    _handle_errors,
    _prefect,
    _resolve_db,
    _topics_option,
    printable,
)
from newsmon.core.errors import ConfigError, WarehouseError
from newsmon.core.progress import reporting

if TYPE_CHECKING:
    from newsmon.flows.serve import ServeConfig


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsmon")
def cli() -> None:
    """newsmon: watch news feeds for EU-NATO defence affairs and load them into DuckDB."""


# --- init -----------------------------------------------------------------------------------


@cli.command()
@_db_option
@_topics_option
@_handle_errors
def init(db: Path | None, topics_file: Path | None) -> None:
    """Create the warehouse (schema migrations) and load the baseline articles."""
    from newsmon.core.settings import Settings
    from newsmon.extractors.topics import load_topics
    from newsmon.warehouse.baseline import ensure_baseline
    from newsmon.warehouse.migrations import latest_version
    from newsmon.warehouse.store import connect

    settings = Settings.from_env()
    db_path = db or settings.db_path
    topics = load_topics(topics_file or settings.topics_path)
    existed = db_path.exists()
    loaded = ensure_baseline(db_path, topics)  # creates and migrates the file if needed
    with connect(db_path, read_only=True) as con:
        rows = con.execute(
            "SELECT a.title, m.topic, m.score, m.relevant FROM articles a "
            "JOIN article_matches m USING (article_id) WHERE a.is_baseline ORDER BY a.published_at"
        ).fetchall()
    verb = "Opened" if existed else "Created"
    click.echo(f"{verb} {db_path} (schema version {latest_version()}).")
    click.echo(f"Baseline: {loaded} article(s) loaded now, {len({r[0] for r in rows})} in total.")
    for title, topic, score, relevant in rows:
        mark = "relevant" if relevant else "NOT relevant"
        click.echo(f"  {score:5.2f}  {mark:<12} {topic}: {title}")


# --- run ------------------------------------------------------------------------------------


@cli.command()
@_db_option
@_feeds_option
@_topics_option
@click.option("--due", is_flag=True, help="Poll only the feeds whose next poll time has come.")
@click.option(
    "--shard",
    default="1/1",
    show_default=True,
    metavar="I/N",
    help="Poll only the I-th of N disjoint shards of the feed list.",
)
@_handle_errors
def run(
    db: Path | None, feeds_file: Path | None, topics_file: Path | None, due: bool, shard: str
) -> None:
    """Poll every feed once, fetch and filter new articles, and load them (the ingest flow).

    With --due, only feeds whose adaptive schedule says so (what `newsmon serve` does); with
    --shard, only one shard of the feeds (docs/scaling.md).
    """
    with _prefect() as prefect_server:
        from newsmon.core.locks import check_lockable
        from newsmon.flows.batches import prepare
        from newsmon.flows.ingest import ingest, load_config, parse_shard

        part = parse_shard(shard)  # fail on bad parameters and config before any work
        config = load_config(db, feeds_file, topics_file)
        check_lockable(config.settings.db_path, part.lock_name)
        which = "" if part.whole else f"shard {part} of "
        click.echo(f"Ingesting {which}{len(config.feeds)} feeds into {config.settings.db_path} ...")
        prepare(config.settings.local_workers)  # workers and models load as Prefect boots
        prefect_server.ready()
        with reporting("ingest: articles"):
            summary = ingest(
                db=str(config.settings.db_path),
                feeds_file=str(config.settings.feeds_path),
                topics_file=str(config.settings.topics_path),
                only_due=due,
                shard=str(part),
            )
    if summary.skipped:
        click.echo(f"Another ingest is running on {config.settings.db_path}; this one did nothing.")
        return
    click.echo(format_summary(summary))


def format_summary(summary: Any) -> str:
    out = io.StringIO()
    width = max((len(f.name) for f in summary.feeds), default=10)
    not_due = f" ({summary.feeds_not_due} not due yet)" if summary.feeds_not_due else ""
    out.write(f"Run {summary.run_id}: {len(summary.feeds)} feeds{not_due}\n")
    for f in summary.feeds:
        if f.status == "ok":
            detail = f"{f.entries} entries, {f.new} new"
        elif f.status == "not_modified":
            detail = "not modified (304)"
        else:
            code = f" HTTP {f.http_status}" if f.http_status else ""
            detail = f"{f.reason}{code}: {f.error or ''}".rstrip(": ")
        out.write(f"  {f.name:<{width}}  {f.status:<12}  {detail}\n")
    failed = summary.feeds_failed
    out.write(
        f"Articles: {summary.articles_new} new, {summary.articles_retried} retried, "
        f"{summary.articles_failed} page(s) failed (kept with the feed's title and summary)\n"
    )
    if summary.baseline_loaded:
        out.write(f"Baseline: {summary.baseline_loaded} article(s) loaded\n")
    out.write(f"Relevant: {len(summary.relevant)}\n")
    for a in summary.relevant[:25]:
        out.write(f"  {a.score:5.2f}  {a.title}\n")
    if len(summary.relevant) > 25:
        out.write(f"  ... and {len(summary.relevant) - 25} more (newsmon sql)\n")
    if failed:
        out.write(f"{failed} feed(s) failed; they are retried on the next run.\n")
    if summary.failing_for_a_day:
        out.write("Failing for a day or more (newsmon feeds check URL):\n")
        for name in summary.failing_for_a_day:
            out.write(f"  {name}\n")
    return printable(out.getvalue().rstrip("\n"))


# --- sql ------------------------------------------------------------------------------------


@cli.command()
@_db_option
@_format_option
@click.argument("query")
@_handle_errors
def sql(db: Path | None, fmt: str, query: str) -> None:
    """Run a read-only SQL QUERY against the warehouse, and nothing else: no file, network,
    ATTACH or LOAD from SQL (`newsmon export` writes files)."""
    import duckdb

    from newsmon.core.errors import QueryError
    from newsmon.warehouse.store import connect_sealed, run_query

    if not query.strip():
        raise QueryError('empty query: give one SQL statement, e.g. newsmon sql "SELECT ..."')
    # nothing but the warehouse: no COPY TO, file readers, ATTACH or LOAD (newsmon export
    # writes files); fts is loaded for BM25 before access is closed
    with connect_sealed(_resolve_db(db)) as con:
        try:
            table = run_query(con, query)
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise QueryError(f"query failed: {message}") from None
    click.echo(render(table.columns, table.rows, fmt))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, map(_plain, r), strict=True)) for r in rows],
            ensure_ascii=False,
            indent=1,
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in r] for r in rows])
        return printable(buf.getvalue().rstrip("\n"))
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    footer = f"({len(rows)} row{'s' if len(rows) != 1 else ''})"
    return "\n".join([line.rstrip(), rule, *(b.rstrip() for b in body), footer])


def _cell(value: Any, limit: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if "." in f"{value:.3f}" else str(value)
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    else:
        text = str(_plain(value))
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- checkpoint -----------------------------------------------------------------------------


@cli.command()
@_db_option
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="DuckLake: keep the snapshots (time travel) of this many days.",
)
@_handle_errors
def checkpoint(db: Path | None, keep_days: int) -> None:
    """Compact the warehouse: on a DuckLake, merge its small files and drop old snapshots.

    Safe while ingests run (a commit that conflicts is run again). Schedule it daily or so for
    a DuckLake warehouse; on a DuckDB file it only folds the write-ahead log into the file.
    """
    from newsmon.warehouse import lake
    from newsmon.warehouse.store import connect, retry_conflicts

    db_path = _resolve_db(db)
    if not db_path.exists():
        raise WarehouseError(
            f"no warehouse at {db_path}: create it with `newsmon init --db {db_path}`"
        )
    with connect(db_path) as con:
        if not lake.is_lake(db_path):
            con.execute("CHECKPOINT")
            click.echo(f"Checkpointed {db_path}.")
            return
        done = retry_conflicts(lake.checkpoint)(con, keep_days)
    click.echo(
        f"Checkpointed {db_path}: data files in use {done.files_before} -> {done.files_after}, "
        f"snapshots {done.snapshots_before} -> {done.snapshots_after} (the last {keep_days} "
        f"day(s) kept); {done.awaiting_deletion} unused file(s) are deleted by a checkpoint "
        "once a day old."
    )


# --- status ---------------------------------------------------------------------------------


@cli.command()
@_db_option
@_handle_errors
def status(db: Path | None) -> None:
    """Show counts, the last run and each feed's health."""
    from newsmon.warehouse.status import warehouse_status
    from newsmon.warehouse.store import connect

    db_path = _resolve_db(db)
    with connect(db_path, read_only=True) as con:
        st = warehouse_status(con)
    click.echo(f"Warehouse {db_path}")
    click.echo(
        f"  articles: {st.articles} ({st.baseline} baseline, {st.extracted} with full text, "
        f"{st.failed} page failures), relevant: {st.relevant}"
    )
    if st.last_run is None:
        click.echo("  last run: never")
    else:
        r = dict(zip(st.last_run.columns, st.last_run.rows[0], strict=True))
        click.echo(
            f"  last run: {r['run_id']} at {_cell(r['started_at'])} UTC"
            f"{'' if r['finished_at'] else ' (did not finish)'}: {r['feeds_total']} feeds "
            f"({r['feeds_ok'] or 0} ok, {r['feeds_not_modified'] or 0} not modified, "
            f"{r['feeds_failed'] or 0} failed), {r['articles_new'] or 0} new articles, "
            f"{r['articles_relevant'] or 0} relevant"
        )
    click.echo("Feeds:")
    click.echo(render(st.feeds.columns, st.feeds.rows))


# --- serve ----------------------------------------------------------------------------------


def _schedule_options(fn: F) -> F:
    """--interval, --digest-interval and --no-digest, for serve and deploy."""
    for option in reversed(
        [
            click.option(
                "--interval", default=120.0, show_default=True, help="Seconds between ingest runs."
            ),
            click.option(
                "--digest-interval",
                default=60.0,
                show_default=True,
                help="Seconds between digest checks.",
            ),
            click.option("--no-digest", is_flag=True, help="Only the ingest deployment(s)."),
        ]
    ):
        fn = option(fn)
    return fn


def _serve_config(
    db: Path | None,
    feeds_file: Path | None,
    topics_file: Path | None,
    alerts_file: Path | None,
    interval: float,
    digest_interval: float,
    no_digest: bool,
) -> ServeConfig:
    """The deployments' settings, with the configuration (feeds, topics, subscriptions) checked:
    a bad one stops the command before anything is served or deployed."""
    from newsmon.flows.digest import select_subscriptions
    from newsmon.flows.ingest import load_config
    from newsmon.flows.serve import ServeConfig

    settings = load_config(db, feeds_file, topics_file).settings
    alerts = None if no_digest else (alerts_file or settings.alerts_path)
    if alerts is not None:
        select_subscriptions(alerts, settings.topics_path, None)
    return ServeConfig(
        db=settings.db_path,
        feeds_file=settings.feeds_path,
        topics_file=settings.topics_path,
        alerts_file=alerts,
        ingest_interval_s=interval,
        digest_interval_s=digest_interval,
    )


def _require_prefect_api(what: str) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise UserError(
            ConfigError(
                "environment",
                "PREFECT_API_URL",
                f"not set: Prefect's temporary server cannot run {what}",
                "start a server (prefect server start) and "
                "export PREFECT_API_URL=http://127.0.0.1:4200/api",
            )
        )


@cli.command()
@_db_option
@_feeds_option
@_topics_option
@_alerts_option
@_schedule_options
@_handle_errors
def serve(
    db: Path | None,
    feeds_file: Path | None,
    topics_file: Path | None,
    alerts_file: Path | None,
    interval: float,
    digest_interval: float,
    no_digest: bool,
) -> None:
    """Run newsmon unattended: serve the ingest and digest deployments (needs a Prefect server).

    Start one with `prefect server start` and set PREFECT_API_URL; stop serving with Ctrl-C.
    """
    from newsmon.flows.serve import serve_forever

    _require_prefect_api("schedules")
    config = _serve_config(
        db, feeds_file, topics_file, alerts_file, interval, digest_interval, no_digest
    )
    click.echo(
        f"Serving newsmon-ingest every {interval:g} s"
        + ("" if config.alerts_file is None else f" and newsmon-digest every {digest_interval:g} s")
        + f" on {config.db}; runs are in the Prefect UI. Ctrl-C stops."
    )
    serve_forever(config)


@cli.command()
@_db_option
@_feeds_option
@_topics_option
@_alerts_option
@click.option("--pool", required=True, help="The Prefect work pool (create it first).")
@click.option(
    "--shards",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Split the ingest deployment into this many shards of the feed list.",
)
@_schedule_options
@_handle_errors
def deploy(
    db: Path | None,
    feeds_file: Path | None,
    topics_file: Path | None,
    alerts_file: Path | None,
    pool: str,
    shards: int,
    interval: float,
    digest_interval: float,
    no_digest: bool,
) -> None:
    """Register the ingest (in --shards shards) and digest deployments on a work pool, for
    Prefect workers to run (`prefect worker start --pool POOL`, on any machine with newsmon).

    Needs a Prefect server (PREFECT_API_URL) and the pool (`prefect work-pool create POOL
    --type process`). Every worker must reach the warehouse and config files at the same paths.
    """
    from newsmon.flows.serve import deploy_to_pool

    _require_prefect_api("work pools")
    config = _serve_config(
        db, feeds_file, topics_file, alerts_file, interval, digest_interval, no_digest
    )
    try:
        names = deploy_to_pool(config, pool, shards)
    except LookupError as exc:
        raise UserError(
            ConfigError("--pool", pool, str(exc), f"prefect work-pool create {pool} --type process")
        ) from None
    click.echo(f"Deployed to work pool {pool!r}: {', '.join(names)}.")
    click.echo(f"Start workers (one per machine or more): prefect worker start --pool {pool}")


# --- feeds ----------------------------------------------------------------------------------


def _feeds_path(feeds_file: Path | None) -> Path:
    from newsmon.core.settings import Settings

    return feeds_file or Settings.from_env().feeds_path


@cli.group()
def feeds() -> None:
    """The feed list: list, check, add, remove, import OPML, export OPML."""


@feeds.command(name="list")
@_db_option
@_feeds_option
@_handle_errors
def feeds_list(db: Path | None, feeds_file: Path | None) -> None:
    """Each configured feed with its health: status, last success, error streak, next poll."""
    from newsmon.core.settings import load_feeds
    from newsmon.warehouse.loads import feed_id_for
    from newsmon.warehouse.store import connect, run_query

    configured = load_feeds(_feeds_path(feeds_file))
    db_path = _resolve_db(db)
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
@_feeds_option
@click.argument("url")
@click.option("--name", default=None, help="Display name [default: the feed's own title].")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for several).")
@click.option("--language", default=None, help="Language of the feed's items, e.g. en.")
@click.option("--interval", type=int, default=None, help="Poll every N minutes (else adaptive).")
@_handle_errors
def feeds_add(
    feeds_file: Path | None,
    url: str,
    name: str | None,
    tags: tuple[str, ...],
    language: str | None,
    interval: int | None,
) -> None:
    """Check the feed at URL once and add it to the feeds file."""
    from newsmon.core.settings import FeedConfig
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
    poll = _check(url)
    if poll.status == "failed":
        raise UserError(
            ConfigError(
                url,
                "",
                f"not added: {poll.reason}: {poll.error or ''}".rstrip(": "),
                "check the URL",
            )
        )
    title = poll.feed.title if poll.feed is not None else ""
    feed = FeedConfig(name or title or url, url, tags, language, interval)
    result = add_feeds(path, [feed])
    for f in result.added:
        click.echo(f"Added {f.name!r} ({f.url}) to {path}.")
    for f, why in result.skipped:
        click.echo(f"Not added {f.name!r}: {why} in {path}.")


@feeds.command(name="remove")
@_feeds_option
@click.argument("name_or_url")
@_handle_errors
def feeds_remove(feeds_file: Path | None, name_or_url: str) -> None:
    """Remove a feed (by name or URL) from the feeds file; its stored articles stay."""
    from newsmon.feedlist import remove_feed

    path = _feeds_path(feeds_file)
    removed = remove_feed(path, name_or_url)
    click.echo(f"Removed {removed.name!r} ({removed.url}) from {path}.")


@feeds.command(name="import")
@_feeds_option
@click.argument("opml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Fetch each feed first and add only those that answer as feeds.",
)
@_handle_errors
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
@_feeds_option
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), required=False)
@_handle_errors
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
@_handle_errors
def feeds_check(url: str) -> None:
    """Fetch and parse one feed now, store nothing, and say what newsmon makes of it."""
    poll = _check(url)
    if poll.status == "failed":
        code = f" HTTP {poll.fetch.http_status}" if poll.fetch.http_status else ""
        click.echo(f"{url}: failed: {poll.reason}{code}: {poll.error or ''}".rstrip(": "))
        sys.exit(1)
    feed = poll.feed
    assert feed is not None
    click.echo(f"{url}: ok, {feed.format or 'unknown format'}, {len(feed.entries)} entries")
    click.echo(f"  title: {feed.title or '(none)'}; language: {feed.language or '(none)'}")
    if feed.ttl_minutes:
        click.echo(f"  asks to be polled at most every {feed.ttl_minutes} minutes (ttl)")
    if feed.bozo:
        click.echo(f"  malformed but readable: {feed.bozo_message}")
    for e in feed.entries[:5]:
        click.echo(f"  - {e.title or e.link or e.guid}")


def _check(url: str) -> Any:
    (poll,) = _check_many([url])
    return poll


def _check_many(urls: Sequence[str], chunk: int = 20) -> list[Any]:
    """Poll feeds once (concurrently, ``chunk`` at a time, reporting progress); store nothing."""
    from newsmon.core.progress import advance
    from newsmon.core.settings import Settings
    from newsmon.extractors.pipeline import FeedTarget, poll_feeds
    from newsmon.flows.ingest import fetch_options

    settings = Settings.from_env()
    options = fetch_options(settings)
    polls: list[Any] = []
    for i in range(0, len(urls), chunk):
        targets = [FeedTarget(f"check-{j}", u) for j, u in enumerate(urls[i : i + chunk], i)]
        polls.extend(poll_feeds(targets, options, settings.max_feed_items))
        advance(len(targets), len(urls))
    return polls


# --- digest ---------------------------------------------------------------------------------


@cli.command()
@_db_option
@_alerts_option
@_topics_option
@click.option("--subscription", default=None, help="Send this subscription's digest now.")
@click.option(
    "--dry-run",
    "dry_run",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write .eml files to this directory instead of sending; records nothing.",
)
@_handle_errors
def digest(
    db: Path | None,
    alerts_file: Path | None,
    topics_file: Path | None,
    subscription: str | None,
    dry_run: Path | None,
) -> None:
    """E-mail the digests that are due (the digest flow); --subscription sends one now.

    Exit status 1 if a digest could not be delivered (it is recorded and retried next time).
    """
    with _prefect() as prefect_server:
        from newsmon.core.settings import Settings
        from newsmon.flows.digest import digest as digest_flow
        from newsmon.flows.digest import select_subscriptions

        settings = Settings.from_env()
        db_path = db or settings.db_path
        alerts_path = alerts_file or settings.alerts_path
        topics_path = topics_file or settings.topics_path
        subs = select_subscriptions(alerts_path, topics_path, subscription)  # bad config: stop
        if not db_path.exists():
            raise UserError(
                ConfigError(db_path, "", "no such warehouse", "run `newsmon init --db PATH` first")
            )
        from newsmon.core.locks import check_lockable

        for sub in subs:  # each digest holds a lock beside the warehouse
            check_lockable(db_path, f"digest-{sub.name}")
        prefect_server.ready()
        outcomes = digest_flow(
            db=str(db_path),
            alerts_file=str(alerts_path),
            topics_file=str(topics_path),
            subscription=subscription,
            dry_run_dir=str(dry_run) if dry_run else None,
        )
    for o in outcomes:
        click.echo(format_outcome(o))
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


def format_outcome(o: Any) -> str:
    if o.status in ("sent", "dry_run"):
        what = f"{o.stories} stories ({o.articles} articles)"
        where = f" -> {o.path}" if o.path else ""
        extra = f"; {o.error}" if o.error else ""
        return f"{o.subscription}: {o.status}, {what}{where}{extra}"
    if o.status == "failed":
        return f"{o.subscription}: FAILED ({o.reason}) {o.error}; the items are kept for next time"
    labels = {
        "empty": "nothing new",
        "not_due": "not due yet",
        "busy": "skipped: another digest of it is running",
    }
    return f"{o.subscription}: {labels.get(o.status, o.status)}"


# --- rescore --------------------------------------------------------------------------------


@cli.command()
@_db_option
@_topics_option
@click.option("--batch-size", default=500, show_default=True, help="Articles scored per batch.")
@_handle_errors
def rescore(db: Path | None, topics_file: Path | None, batch_size: int) -> None:
    """Re-run the topic filters over every stored article (no refetching; the rescore flow).

    Entities and matches are replaced in one transaction at the end; prints how many articles
    changed relevance, per topic.
    """
    with _prefect() as prefect_server:
        from newsmon.core.settings import Settings
        from newsmon.extractors.topics import load_topics
        from newsmon.flows.rescore import rescore_flow

        settings = Settings.from_env()
        db_path = db or settings.db_path
        topics_path = topics_file or settings.topics_path
        load_topics(topics_path)  # a bad topics file stops here, before any flow runs
        if not db_path.exists():
            raise UserError(
                ConfigError(db_path, "", "no such warehouse", "run `newsmon init --db PATH` first")
            )
        prefect_server.ready()
        with reporting("rescore: articles"):
            summary = rescore_flow(
                db=str(db_path), topics_file=str(topics_path), batch_size=batch_size
            )
    click.echo(format_rescore(summary))


def format_rescore(summary: Any) -> str:
    lines = [
        f"Rescored {summary.articles} articles: {summary.changed} changed relevance.",
        f"{'topic':<24}{'before':>8}{'after':>8}{'gained':>8}{'lost':>8}",
    ]
    for topic, c in sorted(summary.topics.items()):
        lines.append(
            f"{topic:<24}{c.relevant_before:>8}{c.relevant_after:>8}"
            f"{c.became_relevant:>8}{c.no_longer_relevant:>8}"
        )
    return "\n".join(lines)


# --- search ---------------------------------------------------------------------------------


@cli.command()
@_db_option
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only articles published on or after this day (UTC), YYYY-MM-DD.",
)
@click.option("--topic", default=None, help="Only articles relevant to this topic.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--all-copies", is_flag=True, help="List every copy of a story, not only the best-ranked one."
)
@_format_option
@click.argument("query")
@_handle_errors
def search(
    db: Path | None,
    since: datetime | None,
    topic: str | None,
    limit: int,
    all_copies: bool,
    fmt: str,
    query: str,
) -> None:
    """Full-text search (BM25) over titles, summaries and texts; best match first.

    One row per story (its best-ranked copy; `copies` counts the story's articles) unless
    --all-copies. Columns: bm25, published, outlet, title, score and relevant (for --topic, else
    the best topic), copies, url. Works offline; the index is rebuilt by `run` and `rescore`.
    """
    from newsmon.warehouse.search import SearchOptions
    from newsmon.warehouse.search import search as run_search
    from newsmon.warehouse.store import connect

    if topic is not None:  # a typo would otherwise find nothing, silently
        from newsmon.core.settings import Settings
        from newsmon.extractors.topics import declared_topics
        from newsmon.learn import check_topic

        topics_path = Settings.from_env().topics_path
        check_topic(declared_topics(topics_path), topic, topics_path)
    options = SearchOptions(
        since=since.date() if since else None, topic=topic, limit=limit, all_copies=all_copies
    )
    with connect(_resolve_db(db), read_only=True) as con:
        table = run_search(con, query, options)
    click.echo(render(table.columns, table.rows, fmt))


# --- export ---------------------------------------------------------------------------------


@cli.command()
@_db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "csv"]),
    default="parquet",
    show_default=True,
    help="File format of the datasets.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only articles published on or after this day (UTC), YYYY-MM-DD.",
)
@click.option("--overwrite", is_flag=True, help="Replace the datasets in a non-empty OUT.")
@click.argument("out", type=click.Path(path_type=Path))
@_handle_errors
def export(db: Path | None, fmt: str, since: datetime | None, overwrite: bool, out: Path) -> None:
    """Write articles, matches, entities and stories under OUT, partitioned by day.

    Hive-style folders (OUT/articles/day=YYYY-MM-DD/data_0.parquet, ...), one dataset per
    table; docs/queries.md shows how to read them back.
    """
    from newsmon.warehouse.export import export_warehouse
    from newsmon.warehouse.store import connect

    with connect(_resolve_db(db), read_only=True) as con:
        datasets = export_warehouse(
            con, out, fmt=fmt, since=since.date() if since else None, overwrite=overwrite
        )
    for d in datasets:
        click.echo(f"{d.name:<9} {d.rows:>7} rows  {d.files:>4} files  {d.path}")


# --- demo -----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/demo.duckdb"),
    show_default=True,
    help="Warehouse for the demo (recreated each time).",
)
@_handle_errors
def demo(db: Path) -> None:
    """Offline demo: serve the bundled sample on 127.0.0.1, ingest it, query the result."""
    with _prefect() as prefect_server:
        from newsmon.demo import run_demo

        prefect_server.ready()
        run_demo(db, echo=click.echo)


def _register_learning() -> None:
    from newsmon.cli.learn import eval_, label, train

    for command in (train, label, eval_):
        cli.add_command(command)


_register_learning()


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="newsmon")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
