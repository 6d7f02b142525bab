"""DuckLake warehouses: the same schema for several writing processes at once.

A DuckDB file takes one writing process. A warehouse path ending in ``.ducklake`` is a DuckLake
instead: its catalog is the SQLite database at that path (DuckLake's catalog for several
processes on one machine) and its data are Parquet files in the directory ``<path>.files/``.
Several ingest processes (shards, issue 9) commit to it at once; ``newsmon sql`` and every other
command read it through the same tables and views.

What differs from a DuckDB file, and how newsmon makes up for it:

- No PRIMARY KEY or UNIQUE constraints: the migrations run without them
  (:func:`without_constraints`) and every keyed write is a ``MERGE INTO`` on the key
  (``store.bulk_insert``), which is what the DuckDB file does too.
- DuckLake settles concurrent commits optimistically: two transactions that only append
  both commit, so two processes could each add "the" new article. Every newsmon write
  transaction on a lake therefore takes a turn: it updates the single row of ``write_turns``
  (:func:`take_turn`), so any two overlapping writes conflict, the later one fails to commit
  and is run again (``store.retry_conflicts``) against the new snapshot, where its ``MERGE``
  finds the other's rows. Extraction, the expensive part, stays concurrent; commits are ordered.
- The SQLite catalog runs in write-ahead-log mode (:func:`_prepare_catalog`).
- A new lake is set up by one writer at a time, under ``<lake>.create.lock`` (:func:`_attach`).
- ``PRAGMA create_fts_index`` cannot create its tables on a lake: warehouse.search builds the
  same layout with :func:`copy_schema`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import duckdb

from newsmon.core.errors import WarehouseError
from newsmon.core.locks import exclusive, lock_path
from newsmon.warehouse import extensions

SUFFIX = ".ducklake"
CATALOG = "warehouse"  # the attached lake's name in a newsmon connection
TURNS = "write_turns"


def is_lake(path: Path) -> bool:
    """Whether the warehouse at ``path`` is a DuckLake (by its suffix)."""
    return path.suffix == SUFFIX


def data_path(path: Path) -> Path:
    """Where a lake's Parquet files live: ``<path>.files/``, DuckLake's own default."""
    return Path(f"{path}.files")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prepare_catalog(path: Path) -> bool:
    """Put the SQLite catalog in write-ahead-log mode (a setting kept in the file), and return
    whether DuckLake has set the catalog up yet (False for a new lake).

    In SQLite's default rollback-journal mode, a DuckLake commit that loses to another
    process's can fail inside SQLite's COMMIT, which leaves that connection's SQLite transaction
    open and the lake locked for every other process until it closes (DuckLake 1.5.5). In WAL
    mode the losing commit fails before that, its connection stays usable, and readers never
    wait for writers.
    """
    try:
        with closing(sqlite3.connect(path, timeout=30)) as catalog:
            if catalog.execute("PRAGMA journal_mode").fetchone() != ("wal",):
                catalog.execute("PRAGMA journal_mode = WAL")
            tables = catalog.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                ["ducklake_metadata"],
            ).fetchall()
            return bool(tables)
    except sqlite3.Error as exc:
        raise WarehouseError(f"cannot open the DuckLake catalog {path}: {exc}") from None


CREATE_WAIT_S = 60.0  # how long a process waits for another that is creating the same lake

# one DuckDB instance per lake, mode and process, with the lake attached: attaching reads the
# catalog (about 0.2 s with three extensions to load), and newsmon opens a connection per batch
_instances: dict[tuple[int, Path, bool], duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


_inherited: list[object] = []  # a forked child's copies of its parent's instances: never freed


def _forget_instances() -> None:
    """In a forked child: its parent's instances are not usable there, and the lock may have
    been held by a parent thread at the fork. They are set aside, not closed: freeing a DuckDB
    instance in a child forked from a process with running DuckDB threads crashes the child
    (SIGSEGV, seen in a subprocess started with a preexec_fn after a lake had been opened);
    the child execs or ends with os._exit, so they are never freed."""
    global _instances, _instances_lock
    _inherited.append(_instances)
    _instances = {}
    _instances_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_instances)


def open_lake(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the lake at ``path`` (attached, and in use): a cursor of this process's
    instance for it, so close it when done. Each transaction reads the lake's latest snapshot,
    whoever committed it."""
    key = (os.getpid(), path.resolve(), read_only)
    with _instances_lock:
        instance = _instances.get(key)
        if instance is None:
            instance = _instances[key] = _attach(key[1], read_only)
    con = instance.cursor()
    con.execute(f"USE {CATALOG}")
    return con


def attach_fresh(path: Path) -> duckdb.DuckDBPyConnection:
    """A new read-only DuckDB instance with the lake attached, shared with nobody (for a
    connection whose settings are then locked down: ``store.connect_sealed``)."""
    return _attach_now(path, read_only=True)


def _attach(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    if read_only or _prepare_catalog(path):
        return _attach_now(path, read_only)
    # A new lake: DuckLake creates its catalog's tables as it attaches, and two processes
    # doing that at once (two shards' first runs) have SQLite refuse one ("database is
    # locked"). One at a time: the second then attaches the lake the first has set up.
    lock = lock_path(path, "create")
    with exclusive(lock, wait_s=CREATE_WAIT_S) as held:
        if not held:
            raise WarehouseError(
                f"cannot create the DuckLake warehouse {path}: another process has been "
                f"creating it for {CREATE_WAIT_S:g} s (its lock: {lock})"
            )
        return _attach_now(path, read_only)


def _attach_now(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        for name in ("ducklake", "sqlite_scanner", "fts"):
            extensions.load(con, name)
        options = f"DATA_PATH {_quoted(str(data_path(path)) + '/')}"
        if read_only:
            options += ", READ_ONLY"
        con.execute(f"ATTACH {_quoted('ducklake:sqlite:' + str(path))} AS {CATALOG} ({options})")
    except duckdb.Error as exc:
        con.close()
        raise WarehouseError(f"cannot open the DuckLake warehouse {path}: {exc}") from None
    return con


def is_lake_connection(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return bool(row and row[0] == "ducklake")


def ensure_turns(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``write_turns`` with its one row (once, in one transaction: two processes doing
    it at once conflict on the table's creation, and the later one finds it made)."""
    if con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = current_database() AND table_name = ?",
        [TURNS],
    ).fetchone() != (0,):
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE {TURNS} (turn BIGINT NOT NULL, taken_at TIMESTAMPTZ NOT NULL)")
        con.execute(f"INSERT INTO {TURNS} VALUES (0, now())")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def take_turn(con: duckdb.DuckDBPyConnection) -> None:
    """In a write transaction on a lake: conflict with every other write transaction open now."""
    con.execute(f"UPDATE {TURNS} SET turn = turn + 1, taken_at = now()")


@dataclass(frozen=True)
class Checkpoint:
    files_before: int  # data files the lake's current snapshot reads
    files_after: int
    snapshots_before: int
    snapshots_after: int
    awaiting_deletion: int  # files no snapshot reads, deleted by a checkpoint a day later


_METADATA = f"__ducklake_metadata_{CATALOG}"  # the catalog database, as DuckLake attaches it


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _lake_state(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(data files in use, snapshots), from the catalog's tables (DuckLake specification)."""
    return (
        _count(
            con, f"SELECT count(*) FROM {_METADATA}.ducklake_data_file WHERE end_snapshot IS NULL"
        ),
        _count(con, f"SELECT count(*) FROM {_METADATA}.ducklake_snapshot"),
    )


def checkpoint(con: duckdb.DuckDBPyConnection, keep_days: int) -> Checkpoint:
    """DuckLake's upkeep in one statement (CHECKPOINT): flush inlined rows to Parquet, expire
    the snapshots older than ``keep_days`` (time travel goes back that far), merge small
    files, and delete the files no snapshot needs once they are a day old (a query may still
    be reading them)."""
    files, snapshots = _lake_state(con)
    con.execute(f"CALL {CATALOG}.set_option('expire_older_than', '{int(keep_days)} days')")
    con.execute(f"CALL {CATALOG}.set_option('delete_older_than', '1 day')")
    con.execute("CHECKPOINT")
    files_after, snapshots_after = _lake_state(con)
    waiting = _count(con, f"SELECT count(*) FROM {_METADATA}.ducklake_files_scheduled_for_deletion")
    return Checkpoint(files, files_after, snapshots, snapshots_after, waiting)


def without_constraints(sql: str) -> str:
    """DDL for a lake: the same statements without PRIMARY KEY and UNIQUE, which DuckLake
    refuses (newsmon's writes keep the keys themselves, by ``MERGE``).

    The rewrite is by line, for the forms newsmon's migrations use: ``PRIMARY KEY`` or
    ``UNIQUE`` after a column's type, and a table's ``PRIMARY KEY (...)`` on its own line, last
    in the table. Any other key constraint (a table-level ``UNIQUE (...)``, a named
    ``CONSTRAINT``, ``ADD PRIMARY KEY``, a key line followed by more columns) is a ValueError
    that names the line, rather than DDL that would fail, or differ, on the lake only.
    """
    out: list[tuple[str, str]] = []  # (code, comment) per line
    for number, line in enumerate(sql.splitlines(), 1):
        code, dash, comment = line.partition("--")
        words = code.upper().split()
        joined = " ".join(words)
        if code.strip().startswith("PRIMARY KEY ("):
            if code.rstrip().endswith(","):
                _unsupported(number, line, "a table's PRIMARY KEY (...) must be its last line")
            # a table constraint on its own line, last in the table: drop the comma before it
            previous = next(i for i in range(len(out) - 1, -1, -1) if out[i][0].strip())
            code_before, comment_before = out[previous]
            out[previous] = (code_before.rstrip().removesuffix(",") + " ", comment_before)
            continue
        if "CONSTRAINT" in words or words[:1] == ["UNIQUE"] or "ADD PRIMARY" in joined:
            _unsupported(number, line, "write the key after the column's type instead")
        kept = code.replace(" PRIMARY KEY", "").replace(" UNIQUE", "")
        if {"PRIMARY", "UNIQUE"} & set(kept.upper().split()):
            _unsupported(number, line, "write it as `<column> <type> PRIMARY KEY` or `UNIQUE`")
        out.append((kept, dash + comment))
    return "\n".join(code + comment for code, comment in out)


def _unsupported(number: int, line: str, fix: str) -> NoReturn:
    raise ValueError(
        f"cannot drop the key constraint in line {number} of a migration for DuckLake: "
        f"{line.strip()!r}: {fix} (warehouse.lake.without_constraints)"
    )


def copy_schema(
    con: duckdb.DuckDBPyConnection,
    source: duckdb.DuckDBPyConnection,
    schema: str,
    macro_parameters: Mapping[str, Sequence[str]],
    rewrite: Callable[[str, str], str] = lambda name, definition: definition,
) -> None:
    """Recreate ``schema`` of ``source`` (tables with their rows, and macros) in ``con``'s
    current catalog, with explicit column types (DuckLake refuses a table created from a
    query with an untyped NULL column). ``macro_parameters`` gives each macro's parameter list
    as written in CREATE MACRO (duckdb_functions() has the names, not the defaults);
    ``rewrite(name, definition)`` may adapt a macro's body to the lake."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    columns: dict[str, list[str]] = {}
    for table, column, data_type in source.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = ? ORDER BY table_name, column_index",
        [schema],
    ).fetchall():
        columns.setdefault(table, []).append(f'"{column}" {data_type}')
    for table, cols in columns.items():
        con.execute(f"CREATE TABLE {schema}.{table} ({', '.join(cols)})")
        rows = source.execute(f"SELECT * FROM {schema}.{table}").to_arrow_table()
        if rows.num_rows:
            con.register("_copied_rows", rows)
            try:
                con.execute(f"INSERT INTO {schema}.{table} SELECT * FROM _copied_rows")
            finally:
                con.unregister("_copied_rows")
    macros = source.execute(
        "SELECT function_name, macro_definition FROM duckdb_functions() "
        "WHERE schema_name = ? AND function_type = 'macro'",
        [schema],
    ).fetchall()
    missing = {name for name, _ in macros} - set(macro_parameters)
    if missing:
        raise WarehouseError(
            f"no parameter list for the macro(s) {sorted(missing)} of {schema}: "
            "the extension changed; update warehouse.search"
        )
    for name, definition in macros:
        params = ", ".join(macro_parameters[name])
        body = rewrite(name, definition)
        con.execute(f"CREATE MACRO {schema}.{name}({params}) AS {body}")


__all__ = [
    "CATALOG",
    "SUFFIX",
    "TURNS",
    "Checkpoint",
    "attach_fresh",
    "checkpoint",
    "copy_schema",
    "data_path",
    "ensure_turns",
    "is_lake",
    "is_lake_connection",
    "open_lake",
    "take_turn",
    "without_constraints",
]
