"""The hostile suite's one shared ingest (see suite.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.suite import HostileRun
from tests.httpserver import LoopbackHTTPServer


@pytest.fixture(scope="session")
def hostile(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    """Every case served at once, and two real ingest runs over all of them."""
    with LoopbackHTTPServer() as server:
        yield HostileRun.start(server, tmp_path_factory.mktemp("hostile"))
