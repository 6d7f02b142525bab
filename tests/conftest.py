"""Shared pytest fixtures: a loopback HTTP server, the bundled sample, a Prefect test server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from newsmon.prefect_server import apply_quiet_defaults

# Prefect reads its settings at import: keep its temporary server offline and quiet in tests.
apply_quiet_defaults()
os.environ.pop("PREFECT_API_URL", None)
# With pytest-xdist (`make test` runs two workers), each worker's commands get a Prefect home of
# their own: two temporary servers must not migrate one SQLite database at the same moment.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("PREFECT_HOME"):
    os.environ["PREFECT_HOME"] = os.path.join(
        os.environ["PREFECT_HOME"], os.environ["PYTEST_XDIST_WORKER"]
    )
    os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)  # Prefect creates only the last part

import pytest  # noqa: E402

from tests.httpserver import LoopbackHTTPServer  # noqa: E402

# fixtures shared by several test files: a real Prefect server (schedules, work pools)
pytest_plugins = ["tests.prefectapi"]


# Tests that run real servers on real clocks (a served flow every few seconds, signals timed
# against a running command, two work-pool workers) and the benchmarks: under two workers they
# run one after another on one worker, first, while the other worker takes the rest; run side
# by side on two cores they slowed one another past their own waits (117 s for a 25 s test).
CLOCKED = (
    "tests/flows/test_serve.py",
    "tests/cli/test_stop.py",
    "tests/flows/test_work_pool.py",
    "tests/test_bench_pipeline.py",
    "tests/test_bench_server.py",
)


def _hostile_cases() -> set[str]:
    return {
        f"tests/hostile/{path.name}"
        for path in (Path(__file__).parent / "hostile").glob("test_*.py")
        if "\ndef serve(" in path.read_text(encoding="utf-8")
    }


def _scope(path: str, hostile: set[str]) -> str:
    if path in CLOCKED:
        return "clocked"
    return "the hostile run" if path in hostile else path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The clocked tests, then the hostile run, first (xdist hands out work in this order)."""
    hostile = _hostile_cases()
    rank = {"clocked": 0, "the hostile run": 1}
    items.sort(key=lambda item: rank.get(_scope(item.nodeid.split("::")[0], hostile), 2))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """How ``make test`` shares the suite between two pytest-xdist workers: by test file, so a
    file's module fixtures are built once, except that every case of the hostile suite's one
    shared run (tests/hostile/suite.py) goes to one worker, which builds the run once, and the
    CLOCKED files go to one worker, in turn. (xdist's own ``loadgroup`` cannot group them
    under pytest 9: it rewrites a node id attribute that pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    hostile = _hostile_cases()

    class ByFile(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid.split("::", 1)[0], hostile)

    return ByFile(config, log)


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    """A started loopback HTTP server (127.0.0.1, free port), stopped after the test."""
    with LoopbackHTTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (SQLite in a temp dir) for every flow run in the session.

    Flow runs here send no heartbeats, as against newsmon's own temporary server
    (newsmon/prefect_server.py): nobody watches them, and each run's end waits up to a second
    for the heartbeat thread."""
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    from tests.prefectapi import prefect_db_template

    with (
        prefect_test_harness(server_startup_timeout=60),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        prefect_db_template.save(Path(url.removeprefix("sqlite+aiosqlite:///")))
        yield


@pytest.fixture(autouse=True)
def _clean_newsmon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the defaults, whatever NEWSMON_* the developer has exported, except
    one: the test servers listen on 127.0.0.1, which newsmon refuses to fetch from by default
    (tests/hostile/test_ssrf.py unsets this to prove it)."""
    for key in list(os.environ):
        if key.startswith("NEWSMON_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSMON_ALLOW_PRIVATE_NETWORKS", "true")
