"""SIGKILL where a clean stop cannot reach: inside a rescore's swap transaction, during a full-text
index build, and during an SMTP exchange the server stalls (the message handed over, the reply
never coming). Nothing is lost and nothing is doubled beyond what docs/alerts.md promises: a
killed rescore changed nothing and the next one completes; a killed index build leaves no half
index, and the next run builds it whole; a digest killed mid-send stays "sending" and its items
go out once more on the next run, after which nothing is sent again. Ctrl-C (to the process
group) in the rescore's swap and SIGTERM (to the process) in the stalled exchange stop the
command as a kill does, in one last line with 130 / 143 within 5 s (tests/cli/test_stop.py does
the same for run and serve)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import copy_warehouse, immediate_alerts, rows
from tests.paths import ROOT
from tests.prefectapi import wait_until
from tests.sample import ingest_sample
from tests.smtpserver import Handler, smtp_server

MATCHES = "SELECT article_id, topic, score, relevant FROM article_matches ORDER BY 1, 2"


@pytest.fixture(scope="module")
def ingested(prefect_server: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample, ingested once for the module (13 articles, 8 relevant)."""
    return ingest_sample(tmp_path_factory.mktemp("kill"))


@pytest.fixture
def warehouse(ingested: Path, tmp_path: Path) -> Path:
    """A copy of it, for one test to kill things over."""
    return copy_warehouse(ingested, tmp_path)


def _start(
    args: list[str], env: dict[str, str], *, group: bool = False
) -> tuple[subprocess.Popen[str], list[str]]:
    from prefect.settings import PREFECT_API_URL

    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsmon.cli", *args],
        env=base | {"PREFECT_API_URL": str(PREFECT_API_URL.value())} | env,
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=group,  # its own process group, as a terminal's job is
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(
        target=lambda: lines.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    ).start()
    return proc, lines


def _kill(proc: subprocess.Popen[str], db: Path) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    _wait_free(db)


def _wait_free(db: Path) -> None:
    deadline = time.monotonic() + 10  # the supervised child dies a moment later
    while time.monotonic() < deadline:
        try:
            rows(db, "SELECT 1")
            return
        except Exception:
            time.sleep(0.05)


@pytest.mark.usefixtures("prefect_server")
def test_sigkill_inside_a_rescore_changes_nothing(warehouse: Path, tmp_path: Path) -> None:
    before = rows(warehouse, MATCHES)
    proc, lines = _start(["rescore", "--db", str(warehouse)], {"NEWSMON_TEST_PAUSE_AT": "rescore"})
    wait_until("the swap paused", lambda: any("paused at rescore" in x for x in lines), 120)
    _kill(proc, warehouse)
    assert rows(warehouse, MATCHES) == before  # the swap was rolled back, whole
    again, _ = _start(["rescore", "--db", str(warehouse)], {})
    assert again.wait(180) == 0
    assert rows(warehouse, MATCHES) == before  # the same topics: the same scores


@pytest.mark.usefixtures("prefect_server")
def test_sigkill_during_an_index_build_leaves_no_half_index(warehouse: Path) -> None:
    import duckdb

    from newsmon.flows.derived import refresh_derived
    from newsmon.warehouse.search import INDEX_SCHEMA, SearchOptions, has_index, load_fts, search

    with duckdb.connect(str(warehouse)) as con:  # a warehouse from before the index
        load_fts(con)
        con.execute("PRAGMA drop_fts_index('articles')")
    proc, lines = _start(["rescore", "--db", str(warehouse)], {"NEWSMON_TEST_PAUSE_AT": "index"})
    wait_until("the index build paused", lambda: any("paused at index" in x for x in lines), 120)
    _kill(proc, warehouse)
    schemas = f"SELECT count(*) FROM duckdb_schemas() WHERE schema_name = '{INDEX_SCHEMA}'"
    assert rows(warehouse, schemas) == [(0,)]  # rolled back whole: no index, not half of one

    refresh_derived(warehouse, 7)  # what the next ingest or rescore does first
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert has_index(con)
        found = search(con, "NATO", SearchOptions())
    title = found.columns.index("title")
    assert found.rows and "nato" in found.rows[0][title].lower(), found.rows


def _stopped(proc: subprocess.Popen[str], lines: list[str], signum: int, group: bool) -> str:
    """Send ``signum`` (to the group, as a terminal's Ctrl-C, or to the process, as systemd);
    the command exits within 5 s with 128 + signum and one last line, which is returned."""
    started = time.monotonic()
    os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
    try:
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - started < 5.0
    assert code == 128 + signum
    time.sleep(0.2)  # the reader thread takes the last line
    said = [x for x in lines if x.startswith("stopped")]
    assert len(said) == 1 and lines[-1] == said[0], lines  # one line, the last one
    assert "Traceback" not in "".join(lines) and len(lines) <= 3, lines  # (progress, pause)
    return said[0].strip()


@pytest.mark.usefixtures("prefect_server")
def test_ctrl_c_in_a_rescore_stops_it_in_one_line_and_changes_nothing(warehouse: Path) -> None:
    before = rows(warehouse, MATCHES)
    proc, lines = _start(
        ["rescore", "--db", str(warehouse)], {"NEWSMON_TEST_PAUSE_AT": "rescore"}, group=True
    )
    wait_until("the swap paused", lambda: any("paused at rescore" in x for x in lines), 120)
    assert _stopped(proc, lines, signal.SIGINT, group=True).startswith("stopped; no score changed")
    assert rows(warehouse, MATCHES) == before


class _Stalling(Handler):
    """Takes the message, then never answers DATA while ``stall`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = threading.Event()
        self.stall.set()
        self.stalled = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        if self.stall.is_set():
            self.stalled.set()
            while self.stall.is_set():
                await asyncio.sleep(0.05)
            return "451 gone"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_digest_stopped_during_a_stalled_smtp_exchange_resends_once(
    warehouse: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    alerts = immediate_alerts(tmp_path / "alerts.toml")
    handler = _Stalling()
    with smtp_server(handler) as (host, port):
        env = {
            "NEWSMON_SMTP_HOST": host,
            "NEWSMON_SMTP_PORT": str(port),
            "NEWSMON_SMTP_SECURITY": "none",
            "NEWSMON_ALERTS": str(alerts),
        }
        proc, lines = _start(["digest", "--db", str(warehouse)], env)
        try:
            assert handler.stalled.wait(120), "the digest never reached DATA"
            if stop is signal.SIGKILL:
                _kill(proc, warehouse)
            else:  # systemd's stop: one line, 143, and the same promise as a kill
                said = _stopped(proc, lines, stop, group=False)
                assert said == "stopped; the digests not sent yet go on the next run"
                _wait_free(warehouse)
        finally:
            handler.stall.clear()
        assert rows(warehouse, "SELECT status FROM digests") == [("sending",)]
        assert handler.messages == []
        for expected in (1, 1):  # the next run resends it once; the one after sends nothing
            again, _ = _start(["digest", "--db", str(warehouse)], env)
            assert again.wait(180) == 0
            assert len(handler.messages) == expected
        assert rows(warehouse, "SELECT count(*) FILTER (WHERE status = 'sent') FROM digests") == [
            (1,)
        ]
