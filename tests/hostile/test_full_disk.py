"""A full disk during a run, made real for one process: a file-size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored, so a write past it fails with EFBIG as a full disk fails with ENOSPC). The run
stops with one line and the fix instead of a traceback, and once there is room the next run
stores every article exactly once."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.flows.ingest import ingest
from tests.helpers import rows
from tests.hostile.suite import item, page, rss, write_feeds
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT

ARTICLES = 6


@pytest.mark.usefixtures("prefect_server")
def test_a_full_disk_stops_the_run_in_one_line_and_the_next_run_completes(
    tmp_path: Path, http_server: LoopbackHTTPServer
) -> None:
    from prefect.settings import PREFECT_API_URL

    titles = {f"d{n}": f"Alliance storage report {n}" for n in range(ARTICLES)}
    for slug, title in titles.items():
        http_server.add(f"/disk/{slug}.html", page(title), content_type="text/html")
    items = "".join(item(t, http_server.url(f"/disk/{k}.html"), k) for k, t in titles.items())
    http_server.add("/disk/feed.xml", rss(items), content_type="application/rss+xml")
    feeds = write_feeds(tmp_path / "feeds.toml", {"disk": http_server.url("/disk/feed.xml")})
    db = tmp_path / "w.duckdb"
    assert CliRunner().invoke(cli, ["init", "--db", str(db)]).exit_code == 0
    limit = db.stat().st_size + 64 * 1024  # no file of this process may grow past it

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    out = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--db", str(db), "--feeds", str(feeds)],
        env=env | {"PREFECT_API_URL": str(PREFECT_API_URL.value()),
                   "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true", "NEWSMON_WORKERS": "1"},
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
        preexec_fn=full_disk,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("Error: cannot use ") and "free space" in out.stderr, out.stderr

    os.environ["NEWSMON_WORKERS"] = "1"
    summary = ingest(db=str(db), feeds_file=str(feeds))
    assert summary.articles_failed == 0
    assert rows(
        db,
        "SELECT count(*), count(DISTINCT canonical_url) FROM articles WHERE NOT is_baseline",
    ) == [(ARTICLES, ARTICLES)]
