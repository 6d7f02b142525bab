"""What every ``newsmon`` command shares: the error boundary, the common options, the
Prefect set-up. Command modules import from here; nothing here imports a command."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from newsmon.core.errors import NewsmonError, require_warehouse, storage_error

if TYPE_CHECKING:
    from newsmon.core.settings import Settings
    from newsmon.prefect_server import TemporaryServer

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def prefect_api() -> Iterator[TemporaryServer]:
    """Prefect for a command that runs flows: quiet, offline defaults, and (when no Prefect
    API is configured) its temporary server started now, to boot while the command imports
    and checks its configuration (newsmon/prefect_server.py). Call ``.ready()`` just before
    the first flow."""
    from newsmon.prefect_server import TemporaryServer, apply_quiet_defaults

    apply_quiet_defaults()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SaidOnce) for f in logger.filters):
            logger.addFilter(_SaidOnce())
    with TemporaryServer() as server:
        yield server


class _SaidOnce(logging.Filter):
    """Drops Prefect's report of a flow or task that failed with one of our errors (with its
    traceback, or as the run's final state): the command says it in one line (handle_errors).
    Other failures still log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            said = _FINAL_STATE.search(record.getMessage())
            return said is None or said.group(1) not in _our_error_names()
        return not isinstance(error, NewsmonError) and storage_error(error) is None


# how Prefect words a run's final state: "Finished in state Failed('Task run encountered an
# exception WarehouseError: ...')"
_FINAL_STATE = re.compile(
    r"Finished in state Failed\('(?:Task|Flow) run encountered an exception (\w+): "
)


def _our_error_names() -> frozenset[str]:
    found, todo = set(), [NewsmonError]
    while todo:
        kind = todo.pop()
        found.add(kind.__name__)
        todo.extend(kind.__subclasses__())
    return frozenset(found)


class UserError(click.ClickException):
    """A NewsmonError shown as one sentence, with the exit status the docstring promises."""

    def __init__(self, error: NewsmonError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code  # type: ignore[misc]  # click declares it a ClassVar


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NewsmonError as exc:
            raise UserError(exc) from None
        except Exception as exc:  # a full disk, a read-only file system: one line too
            storage = storage_error(exc)
            if storage is None:
                raise
            raise UserError(storage) from None

    return wrapper  # type: ignore[return-value]


def file_option(flag: str, dest: str, what: str, env: str, default: str) -> Callable[[F], F]:
    """A ``--flag PATH`` option whose default comes from settings (so it is not shown here)."""

    def decorate(fn: F) -> F:
        return click.option(
            flag,
            dest,
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"{what} [default: ${env}, then {default}].",
        )(fn)

    return decorate


db_option = file_option(
    "--db",
    "db",
    "Warehouse: a DuckDB file, or a DuckLake (a path ending in .ducklake)",
    "NEWSMON_DB",
    "data/newsmon.duckdb",
)
topics_option = file_option(
    "--topics", "topics_file", "Topics file", "NEWSMON_TOPICS", "config/topics.toml"
)
feeds_option = file_option(
    "--feeds", "feeds_file", "Feeds file", "NEWSMON_FEEDS", "config/feeds.toml"
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
alerts_option = file_option(
    "--alerts", "alerts_file", "Subscriptions file", "NEWSMON_ALERTS", "config/alerts.toml"
)


# C0 controls but tab and newline, DEL, and the C1 controls (0x80-0x9f: 0x9b is a one-byte CSI):
# text from feeds and pages that a terminal would obey (retitle, clear, move the cursor)
_CONTROLS = {c: "\ufffd" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with every terminal control character shown as U+FFFD."""
    return text.translate(_CONTROLS)


def current_settings() -> Settings:
    """This invocation's settings: read from the environment and validated once, then shared by
    every step of the command (cached on click's root context)."""
    from newsmon.core.settings import Settings

    context = click.get_current_context(silent=True)
    if context is None:
        return Settings.from_env()
    meta = context.find_root().meta
    if "newsmon.settings" not in meta:
        meta["newsmon.settings"] = Settings.from_env()
    settings: Settings = meta["newsmon.settings"]
    return settings


def resolve_db(db: Path | None) -> Path:
    return db if db is not None else current_settings().db_path


def existing_db(db: Path | None) -> Path:
    """The warehouse this command reads, which must exist (MissingWarehouseError says how)."""
    return require_warehouse(resolve_db(db))
