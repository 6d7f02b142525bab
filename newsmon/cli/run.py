"""Commands that run the pipeline over one warehouse: init, run, rescore, status, checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsmon.cli.options import (
    current_settings,
    db_option,
    existing_db,
    feeds_option,
    handle_errors,
    prefect_api,
    resolve_db,
    topics_option,
)
from newsmon.cli.render import cell, format_rescore, format_summary, render
from newsmon.core.errors import require_warehouse
from newsmon.core.progress import reporting

if TYPE_CHECKING:
    pass


# --- init -----------------------------------------------------------------------------------


@click.command()
@db_option
@topics_option
@handle_errors
def init(db: Path | None, topics_file: Path | None) -> None:
    """Create the warehouse (schema migrations) and load the baseline articles."""
    from newsmon.extractors.topics import load_topics
    from newsmon.warehouse.baseline import ensure_baseline
    from newsmon.warehouse.migrations import latest_version
    from newsmon.warehouse.store import connect

    settings = current_settings()
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


@click.command()
@db_option
@feeds_option
@topics_option
@click.option("--due", is_flag=True, help="Poll only the feeds whose next poll time has come.")
@click.option(
    "--shard",
    default="1/1",
    show_default=True,
    metavar="I/N",
    help="Poll only the I-th of N disjoint shards of the feed list.",
)
@click.option(
    "--init", "create", is_flag=True, help="Create the warehouse first when there is none."
)
@handle_errors
def run(
    db: Path | None,
    feeds_file: Path | None,
    topics_file: Path | None,
    due: bool,
    shard: str,
    create: bool,
) -> None:
    """Poll every feed once, fetch and filter new articles, and load them (the ingest flow).

    With --due, only feeds whose adaptive schedule says so (what `newsmon serve` does); with
    --shard, only one shard of the feeds (docs/scaling.md). The warehouse must exist (`newsmon
    init`) unless --init is given: a mistyped --db does not make a new, empty one.
    """
    with prefect_api() as prefect_server:
        from newsmon.core.locks import check_lockable
        from newsmon.flows.batches import prepare
        from newsmon.flows.ingest import ingest, load_config, parse_shard

        part = parse_shard(shard)  # fail on bad parameters and config before any work
        config = load_config(db, feeds_file, topics_file, current_settings())
        if not create:
            require_warehouse(config.settings.db_path)
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


# --- rescore --------------------------------------------------------------------------------


@click.command()
@db_option
@topics_option
@click.option("--batch-size", default=500, show_default=True, help="Articles scored per batch.")
@handle_errors
def rescore(db: Path | None, topics_file: Path | None, batch_size: int) -> None:
    """Re-run the topic filters over every stored article (no refetching; the rescore flow).

    Entities and matches are replaced in one transaction at the end; prints how many articles
    changed relevance, per topic.
    """
    with prefect_api() as prefect_server:
        from newsmon.extractors.topics import load_topics
        from newsmon.flows.rescore import rescore_flow

        settings = current_settings()
        db_path = db or settings.db_path
        topics_path = topics_file or settings.topics_path
        load_topics(topics_path)  # a bad topics file stops here, before any flow runs
        require_warehouse(db_path)
        prefect_server.ready()
        with reporting("rescore: articles"):
            summary = rescore_flow(
                db=str(db_path), topics_file=str(topics_path), batch_size=batch_size
            )
    click.echo(format_rescore(summary))


# --- status ---------------------------------------------------------------------------------


@click.command()
@db_option
@handle_errors
def status(db: Path | None) -> None:
    """Show counts, the last run and each feed's health."""
    from newsmon.warehouse.status import warehouse_status
    from newsmon.warehouse.store import connect

    db_path = resolve_db(db)
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
            f"  last run: {r['run_id']} at {cell(r['started_at'])} UTC"
            f"{'' if r['finished_at'] else ' (did not finish)'}: {r['feeds_total']} feeds "
            f"({r['feeds_ok'] or 0} ok, {r['feeds_not_modified'] or 0} not modified, "
            f"{r['feeds_failed'] or 0} failed), {r['articles_new'] or 0} new articles, "
            f"{r['articles_relevant'] or 0} relevant"
        )
    click.echo("Feeds:")
    click.echo(render(st.feeds.columns, st.feeds.rows))


# --- checkpoint -----------------------------------------------------------------------------


@click.command()
@db_option
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="DuckLake: keep the snapshots (time travel) of this many days.",
)
@handle_errors
def checkpoint(db: Path | None, keep_days: int) -> None:
    """Compact the warehouse: on a DuckLake, merge its small files and drop old snapshots.

    Safe while ingests run (a commit that conflicts is run again). Schedule it daily or so for
    a DuckLake warehouse; on a DuckDB file it only folds the write-ahead log into the file.
    """
    from newsmon.warehouse import lake
    from newsmon.warehouse.store import connect, retry_conflicts

    db_path = existing_db(db)
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
