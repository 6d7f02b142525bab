"""`newsmon serve` against a real Prefect server (`prefect server start`, started and stopped
here): an item appended to a feed reaches the warehouse within a few cycles, and a feed that
asked to be polled rarely is not polled again before its time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from newsmon.flows.serve import instance_for
from newsmon.warehouse.store import connect
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT
from tests.prefectapi import wait_until
from tests.sample import news_page, rss

NEWSMON = [sys.executable, "-m", "newsmon.cli"]
INTERVAL = 5  # seconds between ingest runs


def test_serve_picks_up_a_new_item_and_respects_poll_times(
    prefect_api: dict[str, str], http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    live = [("Eastern flank exercise begins", http_server.url("/a1.html"))]
    http_server.add(
        "/a1.html", news_page("Eastern flank exercise begins"), content_type="text/html"
    )
    http_server.add("/live.xml", rss(live), content_type="application/rss+xml")
    quiet = [("Quiet item", http_server.url("/q1.html"))]
    http_server.add("/q1.html", news_page("Quiet item"), content_type="text/html")
    http_server.add("/quiet.xml", rss(quiet, ttl=60), content_type="application/rss+xml")
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f'[[feeds]]\nname = "live"\nurl = "{http_server.url("/live.xml")}"\n\n'
        f'[[feeds]]\nname = "quiet"\nurl = "{http_server.url("/quiet.xml")}"\n',
        encoding="utf-8",
    )
    db = tmp_path / "w.duckdb"
    env = {
        **prefect_api,
        "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",
        "NEWSMON_HTTP_RETRIES": "0",
        "NEWSMON_WORKERS": "1",
        # poll the live feed on every cycle: a fast schedule for a test that must be short
        "NEWSMON_POLL_MIN_INTERVAL": "1",
        "NEWSMON_POLL_INITIAL_INTERVAL": "1",
        "NEWSMON_POLL_MAX_INTERVAL": "2",
    }
    serve = subprocess.Popen(
        [*NEWSMON, "serve", "--db", str(db), "--feeds", str(feeds), "--interval", str(INTERVAL),
         "--no-digest"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip

    def titles() -> set[str]:
        if not db.exists():
            return set()
        with connect(db, read_only=True) as con:
            return {r[0] for r in con.execute("SELECT title FROM articles").fetchall()}

    def runs() -> int:
        with connect(db, read_only=True) as con:
            row = con.execute("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()
        return int(row[0]) if row else 0

    try:
        wait_until("the first ingest", lambda: "Eastern flank exercise begins" in titles(), 120)
        runs_before = runs()
        live.append(("Baltic air policing reinforced", http_server.url("/a2.html")))
        http_server.add(
            "/a2.html", news_page("Baltic air policing reinforced"), content_type="text/html"
        )
        http_server.add("/live.xml", rss(live), content_type="application/rss+xml")
        # the item is visible as soon as its batch commits, a moment before its run is recorded
        # as finished: wait for both, then count the runs it took
        wait_until(
            "the appended item, and the run that loaded it",
            lambda: "Baltic air policing reinforced" in titles() and runs() > runs_before,
            90,
        )
        cycles = runs() - runs_before
        assert 1 <= cycles <= 3, cycles  # seen within three runs of being published
        assert http_server.count("/live.xml") >= 2
        # the quiet feed asked for a 60-minute ttl: polled once, not on every cycle
        assert http_server.count("/quiet.xml") == 1
        assert http_server.count("/a1.html") == 1  # and no page is fetched twice
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        try:
            out, _ = serve.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            out, _ = serve.communicate()
    assert f"Serving newsmon-ingest-w-{instance_for(db)[2:]} every 5 s on {db}" in out


def test_serve_without_a_prefect_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    result = subprocess.run(
        [*NEWSMON, "serve", "--db", str(tmp_path / "w.duckdb")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "PREFECT_API_URL: not set" in result.stderr
    assert "prefect server start" in result.stderr
