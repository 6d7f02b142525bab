"""newsmon's exception hierarchy, drawn once.

    NewsmonError                 base: the CLI turns any of these into one clear sentence
    ├── ConfigError              a config file or NEWSMON_* variable is wrong: stops before any
    │                            work (exit status 2)
    ├── WarehouseError           the DuckDB file cannot be opened, migrated or written
    │   ├── WarehouseLockedError another process holds the write lock (retryable)
    │   └── MissingWarehouseError there is no warehouse at the path (create it with init)
    ├── QueryError               a `newsmon sql` query failed
    └── StorageError             the disk is full, read-only or refuses us (storage_error()
                                 recognises it in an OSError or a DuckDB error)

Each class says in its type whether the same command can succeed later unchanged
(``retryable``: a lock held by another process) or needs a fix first (terminal: everything
else), and the exit status the CLI gives it (``exit_code``), so every command reports the same
error the same way.

Failures of a single feed, page or article are *not* exceptions: they are values (a status and
a reason from ``newsmon.extractors.reasons``) recorded in the warehouse, so that one bad input
never stops a run.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import ClassVar


class NewsmonError(Exception):
    """Base class of every error newsmon reports to a user."""

    retryable: ClassVar[bool] = False  # True: the same command may succeed later as it is
    exit_code: ClassVar[int] = 1  # the command could not do its work


class ConfigError(NewsmonError):
    """A configuration problem, naming the file, the key, the bad value and the fix."""

    exit_code: ClassVar[int] = 2  # bad usage or configuration: nothing was done

    def __init__(
        self,
        source: str | Path,
        key: str,
        problem: str,
        fix: str,
    ) -> None:
        self.source = str(source)
        self.key = key
        self.problem = problem
        self.fix = fix
        where = f"{self.source}: {key}" if key else self.source
        super().__init__(f"{where}: {problem}. Fix: {fix}")


class WarehouseError(NewsmonError):
    """The warehouse could not be opened, migrated or written."""


class WarehouseLockedError(WarehouseError):
    """Another process holds DuckDB's write lock on the file (retry later)."""

    retryable: ClassVar[bool] = True


class MissingWarehouseError(WarehouseError):
    """No warehouse at the path a command was given: every command says so in these words."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"no warehouse at {path}: create it with `newsmon init --db {path}`")
        self.path = Path(path)


def require_warehouse(path: Path) -> Path:
    """``path``, or :class:`MissingWarehouseError` when nothing is there."""
    if not path.exists():
        raise MissingWarehouseError(path)
    return path


class QueryError(NewsmonError):
    """An ad-hoc SQL query failed."""


class StorageError(NewsmonError):
    """A file could not be written or read for a reason of the storage: disk full, a file-size
    limit, a read-only file system, permissions, an I/O error. Nothing half-written is kept:
    every warehouse write is a transaction."""


_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file grew past the size this process may write",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an input/output error",
}
# the same, as DuckDB words them in its own errors
_STORAGE_TEXTS = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "File too large": errno.EFBIG,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


def storage_error(exc: BaseException, path: str | Path | None = None) -> StorageError | None:
    """``exc`` (or what caused it) as a StorageError with the fix, or None when it is not a
    storage failure. Lets every command say "disk full" in one line, whichever layer met it.
    ``path`` names the file when the error does not (DuckDB's do not)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 16 and all(current is not s for s in seen):
        seen.append(current)
        code = current.errno if isinstance(current, OSError) else None
        if code not in _STORAGE_ERRNOS:
            code = next((c for text, c in _STORAGE_TEXTS.items() if text in str(current)), None)
        if code is not None:
            name = getattr(current, "filename", None) or path
            where = f" {name}" if name else " a file"
            return StorageError(
                f"cannot use{where}: {_STORAGE_ERRNOS[code]}; nothing half-written was kept. "
                "Fix: free space on that file system or make it writable, then run again"
            )
        current = current.__cause__ or current.__context__
    return None


__all__ = [
    "ConfigError",
    "MissingWarehouseError",
    "NewsmonError",
    "QueryError",
    "StorageError",
    "WarehouseError",
    "WarehouseLockedError",
    "require_warehouse",
    "storage_error",
]
