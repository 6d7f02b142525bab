"""Progress of long interactive work (``run``, ``rescore``): a bar on a terminal, lines otherwise;
and the count of articles stored so far, for the line a stopped command prints
(newsmon/cli/supervise.py).

The stages report through :func:`advance` wherever they run in this process (Prefect runs tasks
in threads); the CLI installs a reporter for the duration of a command with :func:`reporting`.
Without one (a deployment, a test), reports cost nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import click

_lock = threading.Lock()
_current: _Reporter | None = None
REPORT_ENV = "NEWSMON_STOP_REPORT"  # a file that holds the number of articles stored so far
_stored = 0


class _Reporter:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.total: int | None = None
        self.done = 0
        self.bar: Any = None
        self.tty = stream.isatty()

    def advance(self, n: int, total: int | None) -> None:
        if total is not None and total != self.total:
            self.total = total
            if self.tty and self.bar is None and total > 0:
                self.bar = click.progressbar(length=total, label=self.label, file=self.stream)
                self.bar.__enter__()
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif not self.tty:
            of = f"/{self.total}" if self.total else ""
            print(f"{self.label}: {self.done}{of}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def advance(n: int, total: int | None = None) -> None:
    """Report ``n`` more items done (of ``total``, when known)."""
    with _lock:
        if _current is not None:
            _current.advance(n, total)


def stored(n: int) -> None:
    """Note ``n`` more articles committed to the warehouse: kept in the file ``REPORT_ENV``
    names, when it is set, so the process that supervises this one can say what was kept."""
    global _stored
    path = os.environ.get(REPORT_ENV)
    with _lock:
        _stored += n
        if path:
            try:
                with open(path, "w", encoding="ascii") as out:
                    out.write(str(_stored))
            except OSError:
                pass  # only the stop line's count is lost


@contextmanager
def reporting(label: str, stream: TextIO | None = None) -> Iterator[None]:
    """Show progress reports made while the block runs (on stderr by default)."""
    global _current
    reporter = _Reporter(label, stream or sys.stderr)
    with _lock:
        _current = reporter
    try:
        yield
    finally:
        with _lock:
            _current = None
        reporter.close()


__all__ = ["REPORT_ENV", "advance", "reporting", "stored"]
