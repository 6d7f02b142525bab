"""NEWSMON_TASK_RUNNER=dask: the batches run on a real local Dask cluster (prefect-dask, two
worker processes) and the warehouse ends up with the same rows as with the default runner.

The sample feeds (13 articles, three feeds, one windows-1252 page, one article in two feeds) are
served on 127.0.0.1 and ingested twice, into two warehouses, in batches of 3 so that several
batches are on the cluster at once. Columns that record *when* (first seen, fetched, updated)
and run ids differ between any two runs and are left out; everything else must be equal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from distributed import Client
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from newsmon.extractors.fetch import FetchOptions
from newsmon.flows.batches import split_host_limits
from newsmon.flows.ingest import RunSummary, ingest
from tests.httpserver import LoopbackHTTPServer
from tests.sample import serve_sample, write_feeds_toml
from tests.smtpserver import free_port

TABLES = (
    "feeds",
    "feed_items",
    "articles",
    "article_entities",
    "article_matches",
    "stories",
    "story_signatures",
)
KEPT_TIMESTAMPS = {"published_at"}  # a fact about the article, not about the run


def table_rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` without its run-dependent columns, sorted."""
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        kept = [
            name
            for name, kind in columns
            if not (kind.startswith("TIMESTAMP") and name not in KEPT_TIMESTAMPS)
            and not name.endswith("run_id")
        ]
        assert kept, table
        rows = con.execute(f"SELECT {', '.join(kept)} FROM {table}").fetchall()
    return sorted(rows, key=repr)


def run(db: Path, feeds: Path) -> tuple[RunSummary, Counter[str]]:
    """Ingest; the summary, and the run's task runs by task name (from the Prefect server)."""
    state = ingest(db=str(db), feeds_file=str(feeds), return_state=True)
    summary = state.result()
    assert isinstance(summary, RunSummary)
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return summary, Counter(t.name.rsplit("-", 1)[0] for t in task_runs)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_dask_runner_loads_the_same_rows_as_the_default_runner(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
    monkeypatch.setenv("NEWSMON_BATCH_SIZE", "3")
    monkeypatch.setenv("NEWSMON_WORKERS", "2")

    local, local_tasks = run(tmp_path / "local.duckdb", feeds)
    requests_local = http_server.counts()
    http_server.reset_stats()

    monkeypatch.setenv("NEWSMON_TASK_RUNNER", "dask")
    on_dask, dask_tasks = run(tmp_path / "dask.duckdb", feeds)

    # 13 articles in batches of 3: five batches, each one task on the cluster, loaded here
    assert local_tasks["extract-filter"] == 5 and "process-batch" not in local_tasks
    assert dask_tasks["process-batch"] == dask_tasks["load"] == 5
    assert "extract-filter" not in dask_tasks and "fetch-pages" not in dask_tasks

    assert local.articles_new == on_dask.articles_new == 13
    assert on_dask.articles_failed == local.articles_failed == 0
    assert sorted(a.url for a in on_dask.relevant) == sorted(a.url for a in local.relevant)
    assert on_dask.relevant, "the sample has relevant articles: the filter ran on the workers"
    # the same feeds and pages asked for, as often (the pages by the Dask workers)
    assert http_server.counts() == requests_local
    for table in TABLES:
        local_rows = table_rows(tmp_path / "local.duckdb", table)
        assert local_rows, f"{table} is empty: the comparison would prove nothing"
        assert table_rows(tmp_path / "dask.duckdb", table) == local_rows, table


def test_batches_fetching_at_once_share_the_per_host_and_total_limits() -> None:
    options = FetchOptions(per_host=4, max_concurrency=32)
    assert split_host_limits(options, 1) == options
    shared = split_host_limits(options, 3)
    assert (shared.per_host, shared.max_concurrency) == (1, 10)
    # never below one request each
    many = split_host_limits(options, 50)
    assert (many.per_host, many.max_concurrency) == (1, 1)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_joins_a_running_cluster_at_the_address_and_leaves_it_running(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NEWSMON_DASK_ADDRESS: `dask scheduler` and `dask worker` processes started here, as on
    other machines; the run sends its batches there and does not stop the cluster it joined."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [str(Path(sys.executable).parent / "dask")]  # the venv's dask command
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        start_new_session=True,
        **quiet,
    )
    workers = subprocess.Popen(
        [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1",
         "--no-dashboard"],
        start_new_session=True,
        **quiet,
    )  # fmt: skip
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
        monkeypatch.setenv("NEWSMON_BATCH_SIZE", "3")
        monkeypatch.setenv("NEWSMON_TASK_RUNNER", "dask")
        monkeypatch.setenv("NEWSMON_DASK_ADDRESS", address)
        summary, tasks = run(tmp_path / "w.duckdb", feeds)
        assert summary.articles_new == 13 and summary.articles_failed == 0
        assert tasks["process-batch"] == tasks["load"] == 5
        with Client(address, timeout=30) as client:
            assert len(client.nthreads()) == 2  # still there for the next run
    finally:
        for proc in (workers, scheduler):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in (workers, scheduler):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_dask_workers_keep_the_address_guard(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SSRF policy travels with the batch: a feed (a local file, read here) linking to
    pages on 127.0.0.1 gets them refused by the Dask workers, as by the local runner."""
    http_server.add("/secret.html", "<html><body>internal</body></html>", content_type="text/html")
    items = "".join(
        f"<item><title>t{i}</title><link>{http_server.url('/secret.html')}?{i}</link></item>"
        for i in range(2)
    )
    feed = tmp_path / "feed.xml"
    feed.write_text(f'<rss version="2.0"><channel><title>c</title>{items}</channel></rss>')
    feeds = write_feeds_toml(tmp_path / "feeds.toml", {"local": str(feed)})
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_NETWORKS")  # the default: public addresses only
    monkeypatch.setenv("NEWSMON_TASK_RUNNER", "dask")
    monkeypatch.setenv("NEWSMON_HTTP_RETRIES", "0")

    summary, tasks = run(tmp_path / "w.duckdb", feeds)

    assert tasks["process-batch"] == 1
    assert (summary.articles_new, summary.articles_failed) == (2, 2)
    assert http_server.count("/secret.html") == 0
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        reasons = con.execute(
            "SELECT extraction_reason FROM articles WHERE NOT is_baseline"
        ).fetchall()
    assert reasons == [("blocked_address",), ("blocked_address",)]
