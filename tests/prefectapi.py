"""A real Prefect server (``prefect server start`` on 127.0.0.1) for the tests that need
schedules or work pools, which Prefect's temporary server does not run.

One server serves the whole session (it takes 10-15 s to start): each test names its own
deployments and work pool, and reads back only the flow runs of those."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import ROOT
from tests.smtpserver import free_port


class _PrefectDatabaseTemplate:
    """A copy of a freshly migrated Prefect database, taken as the session's first Prefect server
    has started: the next servers of this process (``prefect_api``'s, the temporary server of
    the commands the tests run, in PREFECT_HOME) start from it instead of migrating a new
    database (6-10 s each)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def save(self, database: Path) -> None:
        import sqlite3
        import tempfile

        if self.path is not None or not database.is_file():
            return
        path = Path(tempfile.mkdtemp(prefix="prefect-db-template-")) / "prefect.db"
        with sqlite3.connect(database) as source, sqlite3.connect(path) as copy:
            source.backup(copy)  # consistent, while the server holds the database
        source.close()
        copy.close()
        self.path = path
        home = os.environ.get("PREFECT_HOME")
        if home:
            self.copy_to(Path(home) / "prefect.db")

    def copy_to(self, database: Path) -> None:
        """Give ``database`` the template, unless it exists already (or there is none yet)."""
        import shutil

        if self.path is not None and not database.exists():
            database.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path, database)


prefect_db_template = _PrefectDatabaseTemplate()


def wait_until(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Prefect server on 127.0.0.1 (its own PREFECT_HOME), stopped after the session:
    the environment that points a command at it."""
    port = free_port()
    env = {
        # the developer's NEWSMON_* settings stay out, as the tests' autouse fixture keeps them
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")},
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-api")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_SETTINGS_PATH": str(ROOT / "config" / "prefect-logging.yml"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        # Each test waits for the first runs of its deployments: the server schedules a new
        # deployment's runs within a second (Prefect: 5 s), and `newsmon serve` and the workers
        # ask for due runs every second (Prefect: 10 s, which with its 10 s prefetch started
        # two to four ingest runs at once, each a Python start-up competing for the CPU).
        "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    env.pop("PREFECT_API_KEY", None)
    prefect_db_template.copy_to(Path(env["PREFECT_HOME"]) / "prefect.db")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
         str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    try:
        wait_until("the Prefect server", healthy, 90)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
