"""Commands that run newsmon unattended: serve (schedules here) and deploy (to a work pool)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsmon.cli.options import (
    F,
    UserError,
    alerts_option,
    current_settings,
    db_option,
    feeds_option,
    handle_errors,
    topics_option,
)
from newsmon.core.errors import ConfigError

if TYPE_CHECKING:
    from newsmon.flows.serve import ServeConfig


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
            click.option(
                "--instance",
                default=None,
                help="Name in every deployment's name [default: the warehouse's file name and a "
                "hash of its path].",
            ),
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
    instance: str | None,
) -> ServeConfig:
    """The deployments' settings, with the configuration (feeds, topics, subscriptions) checked:
    a bad one stops the command before anything is served or deployed."""
    from newsmon.flows.digest import select_subscriptions
    from newsmon.flows.ingest import load_config
    from newsmon.flows.serve import ServeConfig, check_instance, instance_for

    settings = load_config(db, feeds_file, topics_file, current_settings()).settings
    alerts = None if no_digest else (alerts_file or settings.alerts_path)
    subscriptions = (
        [] if alerts is None else select_subscriptions(alerts, settings.topics_path, None)
    )
    immediate = any(s.frequency == "immediate" for s in subscriptions)
    return ServeConfig(
        db=settings.db_path,
        feeds_file=settings.feeds_path,
        topics_file=settings.topics_path,
        alerts_file=alerts,
        instance=check_instance(instance) if instance else instance_for(settings.db_path),
        poll_ceiling_s=settings.immediate_poll_interval_s if immediate else None,
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


@click.command()
@db_option
@feeds_option
@topics_option
@alerts_option
@_schedule_options
@handle_errors
def serve(
    db: Path | None,
    feeds_file: Path | None,
    topics_file: Path | None,
    alerts_file: Path | None,
    interval: float,
    digest_interval: float,
    no_digest: bool,
    instance: str | None,
) -> None:
    """Run newsmon unattended: serve the ingest and digest deployments (needs a Prefect server).

    Start one with `prefect server start` and set PREFECT_API_URL; stop serving with Ctrl-C.
    """
    from newsmon.flows.serve import names, refuse_replacing, serve_forever

    _require_prefect_api("schedules")
    config = _serve_config(
        db, feeds_file, topics_file, alerts_file, interval, digest_interval, no_digest, instance
    )
    refuse_replacing(config)
    ingest_name, *digest_name = names(config)
    click.echo(
        f"Serving {ingest_name} every {interval:g} s"
        + "".join(f" and {n} every {digest_interval:g} s" for n in digest_name)
        + f" on {config.db}; runs are in the Prefect UI. Ctrl-C stops."
    )
    serve_forever(config)


@click.command()
@db_option
@feeds_option
@topics_option
@alerts_option
@click.option("--pool", required=True, help="The Prefect work pool (create it first).")
@click.option(
    "--shards",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Split the ingest deployment into this many shards of the feed list.",
)
@_schedule_options
@handle_errors
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
    instance: str | None,
) -> None:
    """Register the ingest (in --shards shards) and digest deployments on a work pool, for
    Prefect workers to run (`prefect worker start --pool POOL`, on any machine with newsmon).

    Needs a Prefect server (PREFECT_API_URL) and the pool (`prefect work-pool create POOL
    --type process`). Every worker must reach the warehouse and config files at the same paths.
    """
    from newsmon.flows.serve import deploy_to_pool

    _require_prefect_api("work pools")
    config = _serve_config(
        db, feeds_file, topics_file, alerts_file, interval, digest_interval, no_digest, instance
    )
    try:
        names = deploy_to_pool(config, pool, shards)
    except LookupError as exc:
        raise UserError(
            ConfigError("--pool", pool, str(exc), f"prefect work-pool create {pool} --type process")
        ) from None
    click.echo(f"Deployed to work pool {pool!r}: {', '.join(names)}.")
    click.echo(f"Start workers (one per machine or more): prefect worker start --pool {pool}")
