"""``newsmon web`` (the reading room) and ``newsmon web-user`` (a users-file line)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsmon.cli.options import (
    alerts_option,
    current_settings,
    db_option,
    existing_db,
    feeds_option,
    handle_errors,
)


@click.command()
@db_option
@alerts_option
@feeds_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8350, show_default=True, type=click.IntRange(1, 65535))
@handle_errors
def web(
    db: Path | None, alerts_file: Path | None, feeds_file: Path | None, host: str, port: int
) -> None:
    """Serve the reading room: stories, articles, search, feeds, alerts (docs/web.md).

    It listens on 127.0.0.1 unless told otherwise; any other address needs NEWSMON_WEB_USERS
    or NEWSMON_WEB_USER_HEADER. It reads the warehouse while an ingest writes it.
    """
    import uvicorn

    from newsmon.core.signing import secret_for
    from newsmon.extractors.topics import declared_topics
    from newsmon.web.app import WebConfig, create_app
    from newsmon.web.security import Access, check_bind, load_users

    settings = current_settings()
    db_path = existing_db(db)
    from newsmon.warehouse.store import connect

    with connect(db_path):  # brings an older warehouse's schema up to date (read marks, ...)
        pass
    users = load_users(settings.web_users_path) if settings.web_users_path else {}
    access = Access(users=users, user_header=settings.web_user_header)
    check_bind(host, access)
    secret = secret_for(db_path, settings.web_secret.reveal() if settings.web_secret else None)
    config = WebConfig(
        db_path=db_path,
        topics=tuple(declared_topics(settings.topics_path)),
        secret=secret,
        access=access,
        alerts_path=alerts_file or settings.alerts_path,
        feeds_path=feeds_file or settings.feeds_path,
        settings=settings,
    )
    click.echo(f"newsmon web: http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


@click.command("web-user")
@click.argument("name")
@handle_errors
def web_user(name: str) -> None:
    """Print a users-file line for NAME (password asked twice, or one line on stdin).

    Put the line under [users] in the file NEWSMON_WEB_USERS names.
    """
    from newsmon.web.security import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.UsageError("the password needs at least 8 characters")
    click.echo(f'{name} = "{hash_password(password)}"')
