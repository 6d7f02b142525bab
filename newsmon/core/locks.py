"""Exclusive locks between processes, as files next to the warehouse (``fcntl.flock``).

Used so that two ingests never write one warehouse at once and two digests of one subscription
never run at once. A lock is released when its holder exits, however it exits (the kernel drops a
dead process's locks), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from newsmon.core.errors import WarehouseError, storage_error


@contextmanager
def exclusive(path: Path, *, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[bool]:
    """Hold the lock file ``path`` while the block runs; yield False if it could not be taken
    within ``wait_s`` seconds (the block then runs without it and must not write)."""
    fh = _open_lock(path)
    deadline = time.monotonic() + wait_s
    with fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(poll_s)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open_lock(path: Path) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a")
    except OSError as exc:  # a read-only folder or file system, a path that cannot exist
        storage = storage_error(exc)  # read-only, permissions, full: every command's wording
        if storage is not None:
            raise storage from None
        raise WarehouseError(
            f"cannot create the lock file {path} ({exc.strerror or exc}): newsmon writes "
            "next to the warehouse; give --db a path in a writable folder"
        ) from None


def check_lockable(db_path: Path, name: str) -> None:
    """Fail now, in one line, when the lock ``name`` next to ``db_path`` cannot be created (a
    command checks this before starting a flow, whose engine would log a traceback)."""
    _open_lock(lock_path(db_path, name)).close()


def lock_path(db_path: Path, name: str) -> Path:
    """The lock file for ``name`` next to the warehouse ``db_path``."""
    return Path(f"{db_path}.{name}.lock")


__all__ = ["check_lockable", "exclusive", "lock_path"]
