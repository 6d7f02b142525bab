"""``newsmon digest``: e-mail the digests that are due, or one now."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsmon.cli.options import (
    alerts_option,
    current_settings,
    db_option,
    handle_errors,
    prefect_api,
    topics_option,
)
from newsmon.cli.render import format_outcome
from newsmon.core.errors import require_warehouse

if TYPE_CHECKING:
    pass


# --- digest ---------------------------------------------------------------------------------


@click.command()
@db_option
@alerts_option
@topics_option
@click.option("--subscription", default=None, help="Send this subscription's digest now.")
@click.option(
    "--dry-run",
    "dry_run",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=(
        "Write what would be sent to this directory instead (.eml; .json for a webhook "
        "channel); records nothing."
    ),
)
@handle_errors
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
    with prefect_api() as prefect_server:
        from newsmon.flows.digest import digest as digest_flow
        from newsmon.flows.digest import select_subscriptions

        settings = current_settings()
        db_path = db or settings.db_path
        alerts_path = alerts_file or settings.alerts_path
        topics_path = topics_file or settings.topics_path
        select_subscriptions(alerts_path, topics_path, None)  # a bad config stops first
        require_warehouse(db_path)
        # with the reading room's: --subscription naming none of either kind stops too
        subs = select_subscriptions(alerts_path, topics_path, subscription, db_path)
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
