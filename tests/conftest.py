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


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """How ``make test`` shares the suite between two pytest-xdist workers: by test file, so a
    file's module fixtures are built once, except that every case of the hostile suite's one
    shared run (tests/hostile/suite.py) goes to the same worker, which builds the run once.
    (xdist's own ``loadgroup`` cannot do it under pytest 9: it rewrites a node id attribute
    that pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    shared = {
        f"tests/hostile/{path.name}"
        for path in (Path(__file__).parent / "hostile").glob("test_*.py")
        if "\ndef serve(" in path.read_text(encoding="utf-8")
    }

    class ByFile(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "the hostile run" if path in shared else path

    return ByFile(config, log)


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    """A started loopback HTTP server (127.0.0.1, free port), stopped after the test."""
    with LoopbackHTTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One temporary Prefect server (SQLite in a temp dir) for every flow run in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
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
