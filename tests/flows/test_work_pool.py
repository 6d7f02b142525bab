"""Sharded polling on a Prefect work pool: `newsmon deploy --shards 2` against a real Prefect
server, two `prefect worker start` processes, one run of each shard's deployment. Each shard
polls only its own feeds, the two together poll every feed once, and every article lands once
(one of them is in feeds of both shards)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsmon.warehouse.store import connect
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT
from tests.prefectapi import wait_until
from tests.sample import news_page, rss, shard_feeds, write_feeds_toml

NEWSMON = [sys.executable, "-m", "newsmon.cli"]
PREFECT = [sys.executable, "-m", "prefect"]
SHARED = "/shared.html"  # an article both shards' feeds link to
POOL_FILTER = {"name": {"any_": ["newsmon-test"]}}


def api(env: dict[str, str], path: str, body: dict[str, Any] | None) -> Any:
    """POST ``body`` to the Prefect API (None: GET). A 503 (the server's SQLite database was
    busy, nothing was done) is asked again, as Prefect's own client does."""
    request = urllib.request.Request(
        env["PREFECT_API_URL"] + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    for attempt in range(10):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 9:
                raise
        time.sleep(0.5 * (attempt + 1))


@pytest.mark.prefect
def test_two_workers_on_a_pool_poll_disjoint_shards_and_load_every_article_once(
    prefect_api: dict[str, str], http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    feeds_by_shard = shard_feeds(http_server)
    http_server.add(SHARED, news_page("Shared article"), content_type="text/html")
    names: dict[str, str] = {}
    for index, urls in feeds_by_shard.items():
        for j, url in enumerate(urls):
            path = url.rsplit("/", 1)[1]
            own = f"/s{index}f{j}.html"
            http_server.add(own, news_page(f"Shard {index} feed {j}"), content_type="text/html")
            links = [(f"Shard {index} feed {j}", http_server.url(own))]
            if j == 0:
                links.append(("Shared article", http_server.url(SHARED)))
            http_server.add(f"/{path}", rss(links), content_type="application/rss+xml")
            names[f"s{index}f{j}"] = url
    feeds = write_feeds_toml(tmp_path / "feeds.toml", names)
    db = tmp_path / "w.duckdb"
    env = {
        **prefect_api,
        "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",
        "NEWSMON_HTTP_RETRIES": "0",
        "NEWSMON_WORKERS": "1",
    }

    def cli(*args: str) -> str:
        out = subprocess.run(
            args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    missing = subprocess.run(
        [*NEWSMON, "deploy", "--pool", "newsmon-test", "--db", str(db), "--feeds", str(feeds)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "no work pool named 'newsmon-test'" in missing.stderr
    assert "prefect work-pool create newsmon-test --type process" in missing.stderr

    cli(*PREFECT, "work-pool", "create", "newsmon-test", "--type", "process")
    # the workers start (a Python start-up each) while the deployments are made and checked
    command = [*PREFECT, "worker", "start", "--pool", "newsmon-test", "--name"]
    workers = [
        subprocess.Popen(
            [*command, f"w{i}"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in (1, 2)
    ]
    try:
        _deploy_run_and_check(env, cli, db, tmp_path / "other.duckdb", feeds)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    runs = finished(env)
    assert {r["state_type"] for r in runs} == {"COMPLETED"}, runs
    assert sorted(r["parameters"]["shard"] for r in runs) == ["1/2", "2/2"]
    # each feed polled once, by its own shard's run; each page fetched once
    for urls in feeds_by_shard.values():
        for url in urls:
            assert http_server.count("/" + url.rsplit("/", 1)[1]) == 1, url
    assert http_server.count(SHARED) == 1
    with connect(db, read_only=True) as con:
        titles = con.execute("SELECT title FROM articles WHERE NOT is_baseline").fetchall()
        polled = con.execute("SELECT count(*) FROM feeds WHERE last_polled_at IS NOT NULL")
        polled_feeds = polled.fetchone()
    assert sorted(t for (t,) in titles) == sorted(
        ["Shared article"] + [f"Shard {i} feed {j}" for i in (1, 2) for j in (0, 1)]
    )
    assert polled_feeds == (4,)


def finished(env: dict[str, str]) -> list[dict[str, Any]]:
    try:
        # this pool's runs only: the session's server also runs other tests' deployments
        runs = api(env, "/flow_runs/filter", {"limit": 10, "work_pools": POOL_FILTER})
    except TimeoutError:  # the server is busy with the two runs (SQLite): ask again
        return []
    return [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")]


def _deploy_run_and_check(
    env: dict[str, str], cli: Callable[..., str], db: Path, other: Path, feeds: Path
) -> None:
    """Deploy two shards, check that another warehouse cannot take their names, run each
    shard's deployment once and wait for both runs."""
    deployed = cli(
        *NEWSMON, "deploy", "--pool", "newsmon-test", "--shards", "2", "--no-digest",
        "--db", str(db), "--feeds", str(feeds), "--interval", "3600", "--instance", "pool",
    )  # fmt: skip
    assert "newsmon-ingest-pool-1-of-2, newsmon-ingest-pool-2-of-2" in deployed
    # issue 21: the same names for another warehouse would have replaced these, silently
    # (checked while the workers take the two runs)
    clash = subprocess.Popen(
        [*NEWSMON, "deploy", "--pool", "newsmon-test", "--shards", "2", "--no-digest",
         "--db", str(other), "--feeds", str(feeds), "--instance", "pool"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for index in (1, 2):  # what `prefect deployment run NAME` does, without its start-up
            name = f"ingest/newsmon-ingest-pool-{index}-of-2"
            deployment = api(env, f"/deployments/name/{name}", None)
            api(env, f"/deployments/{deployment['id']}/create_flow_run", {})
        stdout, stderr = clash.communicate(timeout=120)
    finally:
        if clash.poll() is None:
            clash.kill()
            clash.wait()
    assert clash.returncode == 2 and stdout == "", stdout + stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert f"deployment ingest/newsmon-ingest-pool-1-of-2 on this Prefect server serves {db}" in (
        stderr
    )
    assert "give this warehouse its own --instance NAME" in stderr
    wait_until("both shards' runs", lambda: len(finished(env)) == 2, 150)


def test_deploy_without_a_prefect_server_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    out = subprocess.run(
        [*NEWSMON, "deploy", "--pool", "p", "--db", str(tmp_path / "w.duckdb")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "PREFECT_API_URL: not set: Prefect's temporary server cannot run work pools" in (
        out.stderr + out.stdout
    )
    assert "prefect server start" in out.stderr + out.stdout
