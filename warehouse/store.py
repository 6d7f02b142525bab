"""Reading and writing the DuckDB warehouse, in batches.

Connections are short-lived: DuckDB lets one process hold the write lock, so the pipeline opens a
write connection per batch and closes it, and readers (``newsmon sql``) retry while it is held.
Writes go through Arrow tables (one ``INSERT ... SELECT`` per table per batch), inside one
transaction per batch, and are idempotent: re-loading the same batch changes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import duckdb
import pyarrow as pa

from newsmon.core.errors import (
    MissingWarehouseError,
    NewsmonError,
    WarehouseError,
    WarehouseLockedError,
    storage_error,
)
from newsmon.warehouse import extensions, lake
from newsmon.warehouse.migrations import migrate

P = ParamSpec("P")
T = TypeVar("T")

LOCK_RETRY_S = 30.0


@contextmanager
def connect(
    path: Path | str, *, read_only: bool = False, wait_s: float = LOCK_RETRY_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating and migrating it when writable), retrying while locked.

    A path ending in ``.ducklake`` is a DuckLake warehouse (warehouse.lake), any other a DuckDB
    file.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise MissingWarehouseError(path)
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc) or WarehouseError(
                f"cannot create {path.parent}: {exc.strerror}"
            ) from None
    if lake.is_lake(path):
        con = lake.open_lake(path, read_only=read_only)
    else:
        con = _open_file(path, read_only, wait_s)
    try:
        if not read_only:
            retry_conflicts(migrate)(con)
        yield con
    finally:
        con.close()


@contextmanager
def connect_sealed(
    path: Path | str, *, wait_s: float = LOCK_RETRY_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for ad-hoc SQL that reaches nothing but the warehouse.

    Its own DuckDB instance, the fts extension loaded from its package, then DuckDB's external
    access turned off, which cannot be turned on again while the instance lives: no COPY TO, no
    file or URL readers, no ATTACH, INSTALL or LOAD. A DuckLake warehouse keeps access to its
    own catalog and data files only (``allowed_paths`` / ``allowed_directories``).
    """
    path = Path(path)
    if not path.exists():
        raise MissingWarehouseError(path)
    if lake.is_lake(path):
        con = lake.attach_fresh(path.resolve())
        con.execute(f"USE {lake.CATALOG}")
        data = str(lake.data_path(path.resolve())) + "/"
        con.execute("SET allowed_directories = [?]", [data])
        con.execute("SET allowed_paths = [?]", [str(path.resolve())])
    else:
        con = _open_file(path, True, wait_s)
        extensions.load(con, "fts")
    try:
        con.execute("SET enable_external_access = false")
        yield con
    finally:
        con.close()


def _open_file(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise _unreadable(path, exc) from None
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"{path} is locked by another newsmon process (an ingest run?); "
                    f"waited {wait_s:g} s: try again when it has finished"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        except duckdb.Error as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: duckdb.Error) -> NewsmonError:
    """Cannot open ``path``: one line, with the fix when the file itself is damaged (or the
    storage's words, when the storage is at fault)."""
    storage = storage_error(exc, path)
    if storage is not None:
        return storage
    detail = " ".join(str(exc).split())
    damaged = ("not a valid DuckDB database", "Could not read enough bytes", "checksum")
    fix = (
        "; the file is damaged (truncated or overwritten): restore it from a backup "
        "(docs/operations.md), or create a new warehouse with `newsmon init --db OTHER`"
        if any(d in detail for d in damaged)
        else ""
    )
    return WarehouseError(f"cannot open {path}: {detail}{fix}")


@contextmanager
def duckdb_threads(con: duckdb.DuckDBPyConnection, threads: int) -> Iterator[None]:
    """Run the block's queries on ``threads`` DuckDB threads, then go back to the setting before
    (DuckDB's ``threads`` is one setting for the whole database instance)."""
    row = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute(f"SET threads = {int(threads)}")
    try:
        yield
    finally:
        if row is not None:
            with suppress(duckdb.Error):  # an instance that has gone (a closed connection)
                con.execute(f"SET threads = {int(row[0])}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction around the block. On a DuckLake warehouse it takes a write turn
    (warehouse.lake): run the function that opens it under :func:`retry_conflicts`."""
    con.execute("BEGIN TRANSACTION")
    try:
        if lake.is_lake_connection(con):
            lake.take_turn(con)
        yield con
    except BaseException:
        # (DuckLake may already have ended a transaction whose statement failed)
        with suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


COMMIT_ATTEMPTS = 30
COMMIT_WAIT_S = (0.02, 1.0)  # the first wait before running a conflicting write again, the most


# How DuckLake 1.5 reports a commit that lost to another writer's: a logical conflict, the
# SQLite catalog busy with (or changed by) another process, its own retries used up.
_CONFLICTS = (
    "Transaction conflict",
    "database is locked",
    "Exceeded the maximum retry count",
    # two processes creating one new lake: the later commit read the catalog mid-creation
    # ("Table entry ... does not have any columns"); against the newer snapshot it succeeds
    "Failed to commit DuckLake transaction",
)


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit refused because another process committed first: run it again."""
    return isinstance(exc, duckdb.Error) and any(c in str(exc) for c in _CONFLICTS)


def retry_conflicts(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` again (with backoff) while its commit conflicts with another writer's.

    For the functions that write the warehouse: each reads what it needs and writes in its own
    transaction, so running it again against the newer snapshot is safe, and it then sees the
    other writer's rows. A DuckDB file has one writer, and nothing is ever run twice.
    """

    @functools.wraps(fn)
    def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
        delay, most = COMMIT_WAIT_S
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except duckdb.Error as exc:
                if not is_conflict(exc):
                    raise
                if attempt == COMMIT_ATTEMPTS:
                    raise WarehouseError(
                        f"{fn.__name__}: gave up after {attempt} commits that conflicted with "
                        f"other writers of the DuckLake warehouse: {str(exc).splitlines()[0]}"
                    ) from exc
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, most)
        raise AssertionError("unreachable")

    return retrying


def bulk_insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[Any],
    *,
    columns: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
    key: Sequence[str] = (),
    update: bool = False,
    keep: Sequence[str] = (),
) -> int:
    """Write dataclass rows through one Arrow table; return how many were given.

    ``columns`` picks fields (default: all), ``extra`` adds columns with one value for every row.
    Without ``key`` the rows are appended. With ``key`` (the table's key columns) a row whose
    key is already stored is skipped, or, with ``update``, overwrites every column but the key
    and those in ``keep``: one ``MERGE INTO``, which a DuckLake warehouse (no key constraints)
    runs as well as a DuckDB file, and as fast as ``INSERT ... ON CONFLICT`` there. The rows'
    keys must be distinct (MERGE refuses a key twice on a file and stores it twice on a lake).
    """
    if not rows:
        return 0
    with batch_view(con, f"_batch_{table}", rows, columns=columns, extra=extra) as (view, cols):
        names = ", ".join(cols)
        if not key:
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")
            return len(rows)
        on = " AND ".join(f"t.{k} = s.{k}" for k in key)
        sets = ", ".join(f"{c} = s.{c}" for c in cols if c not in key and c not in keep)
        matched = f"WHEN MATCHED THEN UPDATE SET {sets}" if update and sets else ""
        values = ", ".join(f"s.{c}" for c in cols)
        con.execute(
            f"""
            MERGE INTO {table} AS t USING {view} AS s ON {on}
            {matched}
            WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})
            """
        )
    return len(rows)


@contextmanager
def batch_view(
    con: duckdb.DuckDBPyConnection,
    view: str,
    rows: Sequence[Any],
    *,
    columns: Sequence[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Iterator[tuple[str, list[str]]]:
    """Register dataclass rows as an Arrow-backed view for one statement; yield (view, columns).

    ``columns`` picks fields (default: all), ``extra`` adds columns with one value for every row;
    dict values are stored as JSON text.
    """
    names = list(columns) if columns is not None else field_names(type(rows[0]))
    data = {c: [getattr(r, c) for r in rows] for c in names}
    data.update({c: [v] * len(rows) for c, v in (extra or {}).items()})
    for c, values in data.items():
        if values and isinstance(next((v for v in values if v is not None), None), dict):
            data[c] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    con.register(view, pa.table(data))
    try:
        yield view, list(data)
    finally:
        con.unregister(view)


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@dataclass(frozen=True)
class Table:
    """Column names and rows of a query result (for ``newsmon sql`` and ``status``)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def without(self, column: str) -> Table:
        """The same table without ``column``."""
        i = self.columns.index(column)
        return Table(
            self.columns[:i] + self.columns[i + 1 :], [r[:i] + r[i + 1 :] for r in self.rows]
        )


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> Table:
    cur = con.execute(sql)
    columns = [d[0] for d in cur.description or []]
    return Table(columns, [tuple(r) for r in cur.fetchall()])


def sql_in_keys(column: str, param: str = "?", of: str = "VARCHAR") -> str:
    """SQL: ``column`` is one of the keys in query parameter ``param``, passed as
    :func:`keys_param` (``of``: the keys' type).

    An ``IN`` over the unnested list, which DuckDB runs as a hash semi-join: ``list_contains``
    scanned the whole list for every row, fine for a batch of 200 keys, but 47 s to register
    180,000 feeds (docs/scaling.md).
    """
    return f"""{column} IN (SELECT unnest(from_json({param}, '["{of}"]')))"""


def keys_param(values: Iterable[str | int]) -> str:
    """A list of keys as one query parameter, for :func:`sql_in_keys`: ``f"... WHERE
    {sql_in_keys('article_id')}"`` with ``keys_param(ids)`` as the parameter.

    DuckDB's Python client converts a list parameter element by element and, for each, tries to
    import pandas; without pandas installed every try searches sys.path again. A 200-key list
    cost 25 ms per statement, seconds per ingest; one JSON text costs a fraction of a
    millisecond, whatever the keys contain.
    """
    return json.dumps(list(values))


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "Table",
    "batch_view",
    "bulk_insert",
    "connect",
    "connect_sealed",
    "duckdb_threads",
    "field_names",
    "is_conflict",
    "keys_param",
    "now_utc",
    "retry_conflicts",
    "run_query",
    "sql_in_keys",
    "transaction",
]
