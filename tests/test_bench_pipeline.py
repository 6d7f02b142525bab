"""The end-to-end benchmark (benchmarks/pipeline.py) still runs, at a tiny size.

Speed is never asserted here (docs/performance.md has the figures): this runs the real benchmark
(2 feeds x 3 items, no added latency) against the session's Prefect server and checks that its
last line is the JSON it promises, with counts that must hold at any speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

KEYS = {
    "articles",
    "e2e_s",
    "e2e_runs_s",
    "articles_per_s",
    "bound_articles_per_s",
    "ratio_to_bound",
    "naive_articles_per_s",
    "speedup_vs_naive",
    "rerun_s",
    "rerun_process_s",
    "rerun_pages_fetched",
    "peak_rss_mb",
    "stage_s",
}
STAGES = {"startup", "prefect", "poll", "fetch", "extract", "filter", "load", "warehouse"}


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize(
    ("runner", "warehouse", "e2e_runs"),
    # make bench; the other two options (make bench-dask, make bench-ducklake) in one run (to
    # keep the suite's time: each run costs 15-25 s; the second measures one first ingest)
    [("local", "duckdb", 2), ("dask", "ducklake", 1)],
)
def test_pipeline_benchmark_at_a_tiny_size_prints_its_json(
    tmp_path: Path, runner: str, warehouse: str, e2e_runs: int
) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    out = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.pipeline", "--feeds", "2", "--items", "3"),
            *("--latency", "0", "--naive-feeds", "1", "--workdir", str(tmp_path)),
            *("--runner", runner, "--warehouse", warehouse, "--e2e-runs", str(e2e_runs)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert set(result) >= KEYS
    assert set(result["stage_s"]) >= STAGES
    assert result["articles"] == 6
    assert result["runner"] == runner
    assert result["warehouse"] == warehouse
    assert (tmp_path / f"newsmon.{warehouse}").is_file()
    assert result["failed"] == 0
    assert result["relevant"] <= 6
    # first ingest: each feed and page once; rerun: the feeds answer 304, no page is fetched
    assert result["first_requests"] == {"feed_200": 2, "page_200": 6}
    assert result["rerun_requests"] == {"feed_304": 2}
    assert result["rerun_pages_fetched"] == 0
    assert result["naive_articles"] == 3
    # each first ingest in a fresh process and warehouse; the faster one reported
    assert len(result["e2e_runs_s"]) == e2e_runs
    assert result["e2e_s"] == min(result["e2e_runs_s"])
    for i in range(2, e2e_runs + 1):
        assert (tmp_path / f"newsmon-{i}.{warehouse}").is_file()
    for key in ("e2e_s", "articles_per_s", "bound_articles_per_s", "naive_articles_per_s"):
        assert result[key] > 0, key
    assert result["ratio_to_bound"] > 0
    assert result["speedup_vs_naive"] > 0
    assert 0 < result["rerun_s"] < result["e2e_s"]
    assert result["peak_rss_mb"] > 50  # a Python process tree, at least
    assert all(v >= 0 for v in result["stage_s"].values())
