"""What the ingest and rescore flows make sure of after loading: stories and the search index.

An ingest keeps both current batch by batch (each load writes its articles' index entries in its
transaction and clusters them: flows/batches.py), so after a complete run there is nothing left
to do here. One coarse task, orchestration only, catches up from the warehouse's state whatever
a crashed or interrupted run left: :func:`newsmon.warehouse.stories.update_stories` (sign and
cluster what needs it) and :func:`newsmon.warehouse.search.refresh_index` when the warehouse has no
index yet.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from newsmon.extractors.stories import StoryParams
from newsmon.warehouse.search import has_index, refresh_index
from newsmon.warehouse.store import connect, retry_conflicts, transaction
from newsmon.warehouse.stories import StoriesSummary, refresh_stories, update_stories


def refresh_derived(
    db_path: Path, window_days: int, *, all_stories: bool = False
) -> StoriesSummary:
    """Cluster what needs it and build the search index if there is none. ``all_stories``,
    after a rescore, also recomputes every story's row (new scores can change a story's best
    article); a rescore changes no text, so the index stands."""
    with connect(db_path) as con:
        summary = update_stories(con, StoryParams(window=timedelta(days=window_days)))
        if all_stories:
            _refresh_all_stories(con)
        if not has_index(con):
            refresh_index(con)
    return summary


@retry_conflicts
def _refresh_all_stories(con: duckdb.DuckDBPyConnection) -> None:
    with transaction(con):
        refresh_stories(con)


@task(name="stories-and-search-index", cache_policy=NO_CACHE)
def refresh_derived_task(
    db_path: Path, window_days: int = 7, all_stories: bool = False
) -> StoriesSummary:
    summary = refresh_derived(db_path, window_days, all_stories=all_stories)
    get_run_logger().info(
        "stories: %d articles left to cluster after the batches (%d new stories, %d copies joined)",
        summary.clustered,
        summary.new_stories,
        summary.joined,
    )
    return summary


__all__ = ["refresh_derived", "refresh_derived_task"]
