"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import LoopbackHTTPServer


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    """A started loopback HTTP server (127.0.0.1, free port), stopped after the test."""
    with LoopbackHTTPServer() as server:
        yield server
