"""Time and memory of an ingest over the whole hostile-input suite (docs/reliability.md).

Serves every case in ``tests/hostile/`` on a loopback server (as the test suite does), then runs
the real ``ingest`` flow over all of them, twice, in this process, with the suite's limits
(``tests.hostile.suite.ENV``). Prints the wall time of each run and the peak resident memory of
this process (the ingest, plus the test server and the case bodies it holds: an upper bound)
and of its children (Prefect's temporary server, extraction workers).

    .venv/bin/python benchmarks/hostile.py
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsmon.prefect_server import apply_quiet_defaults  # noqa: E402 (after the path)

apply_quiet_defaults()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    import newsmon.flows.ingest  # noqa: F401  (imported before measuring: its own cost is not the run's)
    from tests.hostile.suite import HostileRun, cases
    from tests.httpserver import LoopbackHTTPServer

    rss_before = _rss_mb()
    with tempfile.TemporaryDirectory() as tmp, LoopbackHTTPServer() as server:
        run = HostileRun.start(server, Path(tmp))
        first, second = run.summaries
        lost = run.rows(
            "SELECT count(*) FROM feed_items i WHERE NOT EXISTS "
            "(SELECT 1 FROM articles a WHERE a.article_id = i.article_id)"
        )[0][0]
        duplicates = run.rows("SELECT count(*) - count(DISTINCT canonical_url) FROM articles")[0][0]
        finished = run.rows("SELECT count(finished_at) FROM runs")[0][0]
        figures = {
            "case_modules": len(cases()),
            "feeds": len(run.feeds),
            "articles": run.rows("SELECT count(*) FROM articles WHERE NOT is_baseline")[0][0],
            "runs_completed": finished,
            "items_lost": lost,
            "duplicates": duplicates,
            "first_run_s": round(run.seconds[0], 1),
            "second_run_s": round(run.seconds[1], 1),
            "feeds_failed_first_run": first.feeds_failed,
            "pages_failed_first_run": first.articles_failed,
            "second_run_new": second.articles_new,
            "rss_mb_before_runs": rss_before,
            "peak_rss_mb_this_process": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "peak_rss_mb_children": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
            ),
        }
    for name, value in figures.items():
        print(f"{name:28} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
