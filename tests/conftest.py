"""Shared pytest fixtures: a loopback HTTP server, the bundled sample, a Prefect test server."""

from __future__ import annotations

import os
from collections.abc import Iterator

from newsmon.prefect_server import apply_quiet_defaults

# Prefect reads its settings at import: keep its temporary server offline and quiet in tests.
apply_quiet_defaults()
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

from tests.httpserver import LoopbackHTTPServer  # noqa: E402

# fixtures shared by several test files: a real Prefect server (schedules, work pools)
pytest_plugins = ["tests.prefectapi"]


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
