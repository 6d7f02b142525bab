"""Clean stops for the long commands: Ctrl-C (SIGINT) or SIGTERM (systemd, ``timeout``) ends
``run``, ``rescore``, ``digest``, ``serve`` and ``demo`` within a second, with one line and exit
status 130 or 143, whatever the work was doing.

The command runs in a child process in its own process group (the same ``newsmon`` command,
marked by ``NEWSMON_SUPERVISED``); this process only waits. On the first SIGINT or SIGTERM it
kills the child's whole group (the command, its extraction workers, its temporary Prefect
server) with SIGKILL, prints what was kept, and exits. Why not a graceful stop inside the
command: Prefect's engine, its event worker, the process pool and the temporary server each
react to a signal on their own (an 80-second hang and 40 KB of tracebacks, issue 21); a kill
cannot hang or print. Nothing is lost by it: every batch is one DuckDB transaction, so the one
being written is either committed or rolled back when the warehouse is next opened, and the
next run fetches what this one did not store (tests/hostile/test_crash.py kills at every step).
A digest killed after the SMTP server accepted it and before it was recorded is sent again on
the next run (docs/alerts.md). A flow run of ``serve`` killed mid-way stays "Running" in the
Prefect UI of an external server.

The child keeps its count of stored articles in a small file (``NEWSMON_STOP_REPORT``, written
by :func:`newsmon.core.progress.stored`), which the stop line reports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from newsmon.core.progress import REPORT_ENV

SUPERVISED = frozenset({"run", "rescore", "digest", "serve", "demo"})
CHILD_ENV = "NEWSMON_SUPERVISED"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _lines(command: str, stored: int) -> str:
    if command in ("run", "demo"):
        return f"stopped; {stored} articles stored, the rest on the next run"
    if command == "rescore":
        return "stopped; no score changed (a rescore writes once, at its end): run it again"
    if command == "digest":
        return "stopped; the digests not sent yet go on the next run"
    return f"stopped serving; {stored} articles stored, the rest when newsmon serve runs again"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """The child is killed too if this process dies unannounced (SIGKILL, the OOM killer)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(argv: Sequence[str]) -> int | None:
    """Run ``newsmon ARGV`` as a stoppable child and return its exit status, or None when this
    process should do the work itself (another command, or already the child)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if (
        command not in SUPERVISED
        or os.environ.get(CHILD_ENV)
        or sys.platform != "linux"
        or any(a in ("-h", "--help") for a in argv)
    ):
        return None
    handle, report = tempfile.mkstemp(prefix="newsmon-stop-", suffix=".count")
    os.close(handle)
    env = {**os.environ, CHILD_ENV: "1", REPORT_ENV: report}
    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            if child is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "newsmon.cli", *argv],
            env=env,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        if received:  # a signal before the child existed
            os.killpg(child.pid, signal.SIGKILL)
        status = child.wait()
        if not received:
            return status
        print(_lines(command, _stored(Path(report))), file=sys.stderr, flush=True)
        return 128 + received[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        Path(report).unlink(missing_ok=True)


def _stored(report: Path) -> int:
    try:
        return int(report.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


__all__ = ["SUPERVISED", "supervise"]
