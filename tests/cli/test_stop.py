"""Clean stops (newsmon/cli/supervise.py), with real signals to real processes: Ctrl-C to
``newsmon run``'s process group, as a terminal sends it, and SIGTERM to ``newsmon serve``, as
systemd and ``timeout`` send it. Each exits within 5 s with one line and 130 / 143, prints no
traceback, and the next run stores every article exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from newsmon.flows.ingest import ingest
from tests.helpers import rows
from tests.hostile.suite import item, page, rss, write_feeds
from tests.httpserver import LoopbackHTTPServer, Reply
from tests.paths import ROOT
from tests.prefectapi import wait_until

ARTICLES = 9
BATCH = 3
HELD = "/pages/p7.html"  # in the third batch: the first two are stored when the signal comes
STOP_S = 5.0


def _serve(server: LoopbackHTTPServer, gate: threading.Event) -> dict[str, str]:
    titles = {f"p{n}": f"Alliance logistics report {n}" for n in range(ARTICLES)}
    for slug, title in titles.items():
        server.add(f"/pages/{slug}.html", page(title), content_type="text/html")
    body = page(titles["p7"])

    def held(h: Any) -> None:
        gate.wait(120)
        server._send(h, Reply(body=body, content_type="text/html"))

    server.add_handler(HELD, held)
    items = "".join(item(t, server.url(f"/pages/{k}.html"), k) for k, t in titles.items())
    server.add("/feed.xml", rss(items), content_type="application/rss+xml")
    return {"wire": server.url("/feed.xml")}


def _env(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    return env | {
        "PREFECT_API_URL": api_url,
        "NEWSMON_BATCH_SIZE": str(BATCH),
        "NEWSMON_WORKERS": "1",
        "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",
        "NEWSMON_HTTP_RETRIES": "0",
        "NEWSMON_HTTP_TIMEOUT": "300",
        "NEWSMON_HTTP_DEADLINE": "300",
    }


def _stored(db: Path) -> int:
    try:
        return int(rows(db, "SELECT count(*) FROM articles WHERE NOT is_baseline")[0][0])
    except duckdb.Error:
        return -1  # the run holds the warehouse


def _stop(proc: subprocess.Popen[str], signum: int, group: bool) -> tuple[float, str]:
    started = time.monotonic()
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return time.monotonic() - started, err


def _finish_and_check(db: Path, feeds: Path, stored_before: int) -> None:
    """The next run stores the rest, and every article exactly once."""
    deadline = time.monotonic() + 10  # the killed command's warehouse lock goes with it
    while _stored(db) == -1:
        assert time.monotonic() < deadline, "the stopped command still holds the warehouse"
        time.sleep(0.05)
    os.environ.update(NEWSMON_BATCH_SIZE=str(BATCH), NEWSMON_WORKERS="1")
    summary = ingest(db=str(db), feeds_file=str(feeds))
    assert summary.articles_new == ARTICLES - stored_before
    assert rows(
        db,
        "SELECT count(*), count(DISTINCT canonical_url), "
        "count(*) FILTER (WHERE extraction_status = 'extracted') "
        "FROM articles WHERE NOT is_baseline",
    ) == [(ARTICLES, ARTICLES, ARTICLES)]


@pytest.mark.usefixtures("prefect_server")
def test_ctrl_c_stops_a_run_at_once_with_one_line_and_the_next_run_completes(
    tmp_path: Path,
) -> None:
    from prefect.settings import PREFECT_API_URL

    gate = threading.Event()
    with LoopbackHTTPServer() as server:
        try:
            feeds = write_feeds(tmp_path / "feeds.toml", _serve(server, gate))
            db = tmp_path / "w.duckdb"
            proc = subprocess.Popen(
                [sys.executable, "-m", "newsmon.cli", "run", "--init", "--db", str(db),
                 "--feeds", str(feeds)],
                cwd=ROOT, env=_env(str(PREFECT_API_URL.value())), text=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
            wait_until(
                "two batches stored, the third held",
                lambda: server.count(HELD) > 0 and _stored(db) == 2 * BATCH,
                180,
            )
            elapsed, err = _stop(proc, signal.SIGINT, group=True)
        finally:
            gate.set()
        assert proc.returncode == 130, err
        assert elapsed < STOP_S, elapsed
        assert "Traceback" not in err and "Error" not in err, err
        # progress lines, then the one line that says what was kept
        assert err.splitlines()[-1] == "stopped; 6 articles stored, the rest on the next run", err
        assert all(line.startswith("ingest: articles") for line in err.splitlines()[:-1]), err
        _finish_and_check(db, feeds, 2 * BATCH)


def test_sigterm_stops_serve_at_once_with_one_line_and_the_next_run_completes(
    prefect_api: dict[str, str], tmp_path: Path
) -> None:
    gate = threading.Event()
    with LoopbackHTTPServer() as server:
        try:
            feeds = write_feeds(tmp_path / "feeds.toml", _serve(server, gate))
            db = tmp_path / "w.duckdb"
            proc = subprocess.Popen(
                [sys.executable, "-m", "newsmon.cli", "serve", "--db", str(db), "--feeds",
                 str(feeds), "--interval", "5", "--no-digest"],
                cwd=ROOT, env=_env(prefect_api["PREFECT_API_URL"]) | prefect_api, text=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
            wait_until("serve's ingest holds the third batch", lambda: server.count(HELD) > 0, 180)
            stored = _stored(db)
            elapsed, err = _stop(proc, signal.SIGTERM, group=False)  # systemd: the main process
        finally:
            gate.set()
        assert proc.returncode == 143, err
        assert elapsed < STOP_S, elapsed
        assert "Traceback" not in err, err
        assert err.splitlines()[-1].startswith("stopped serving; "), err
        _finish_and_check(db, feeds, max(stored, 0))
