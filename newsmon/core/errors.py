"""newsmon's exception hierarchy, drawn once.

    NewsmonError                 base: the CLI turns any of these into one clear sentence
    ├── ConfigError              a config file or NEWSMON_* variable is wrong: stops before any work
    ├── WarehouseError           the DuckDB file cannot be opened, migrated or written
    │   └── WarehouseLockedError another process holds the write lock (retryable)
    └── QueryError               a `newsmon sql` query failed

Failures of a single feed, page or article are *not* exceptions: they are values (a status and
a reason from ``newsmon.extractors.reasons``) recorded in the warehouse, so that one bad input
never stops a run.
"""

from __future__ import annotations

from pathlib import Path


class NewsmonError(Exception):
    """Base class of every error newsmon reports to a user."""


class ConfigError(NewsmonError):
    """A configuration problem, naming the file, the key, the bad value and the fix."""

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


class QueryError(NewsmonError):
    """An ad-hoc SQL query failed."""


__all__ = [
    "ConfigError",
    "NewsmonError",
    "QueryError",
    "WarehouseError",
    "WarehouseLockedError",
]
