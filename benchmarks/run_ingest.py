"""Run the real ``ingest`` flow ``--runs`` times in this process; one JSON line per run.

The benchmark starts this as a subprocess, so the first run is measured as a user would see it:
a fresh process, imports and Prefect's temporary server included (started early, as ``newsmon
run`` does it: newsmon/prefect_server.py). Later runs reuse the process
(and its Prefect server), as a long-running scheduler would. Each line has wall-clock stamps
(``time.time()``, comparable with the parent's) and the flow's own seconds per stage.

    python -m benchmarks.run_ingest --db W.duckdb --feeds feeds.toml [--runs 2]
"""

from __future__ import annotations

import time

STARTED = time.time()  # before the heavy imports below

import argparse  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    from newsmon.prefect_server import TemporaryServer

    with TemporaryServer() as prefect_server:  # as `newsmon run` does
        from newsmon.core.settings import Settings
        from newsmon.flows.batches import prepare
        from newsmon.flows.ingest import ingest

        imported = time.time()
        prepare(Settings.from_env().local_workers)
        prefect_server.ready()
        _runs(ingest, args, imported)


def _runs(ingest: Callable[..., Any], args: argparse.Namespace, imported: float) -> None:
    for run in range(1, args.runs + 1):
        called = time.time()
        summary = ingest(db=args.db, feeds_file=args.feeds)
        ended = time.time()
        line = {
            "run": run,
            "started": STARTED,
            "called": called,
            "ended": ended,
            "articles_new": summary.articles_new,
            "articles_failed": summary.articles_failed,
            "relevant": len(summary.relevant),
            "feeds_failed": summary.feeds_failed,
            "stage_seconds": summary.stage_seconds,
            "imported": imported,  # before waiting for Prefect's temporary server
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
