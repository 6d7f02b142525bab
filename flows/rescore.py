"""The ``rescore`` Prefect flow: score every stored article again after the topics change.

Orchestration only: the work is :func:`newsmon.warehouse.rescore.rescore`, one coarse task. The
topics file is loaded and validated before the warehouse is opened, so a bad topic stops the run
before any work.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from newsmon.core.progress import advance
from newsmon.core.settings import Settings
from newsmon.extractors.topics import TopicSet, load_topics
from newsmon.flows.derived import refresh_derived_task
from newsmon.warehouse.rescore import RescoreSummary, rescore
from newsmon.warehouse.store import connect


@task(name="rescore-articles", cache_policy=NO_CACHE)
def rescore_task(db_path: Path, topics: TopicSet, batch_size: int) -> RescoreSummary:
    logger = get_run_logger()
    done = 0

    def progress(n: int, total: int) -> None:
        nonlocal done
        done += n
        logger.info("scored %d of %d articles", done, total)
        advance(n, total)

    with connect(db_path) as con:
        return rescore(con, topics, batch_size=batch_size, progress=progress)


@flow(name="rescore", log_prints=False)
def rescore_flow(db: str, topics_file: str, batch_size: int = 500) -> RescoreSummary:
    """Re-run the topic filters over the warehouse ``db`` with ``topics_file``."""
    topics = load_topics(Path(topics_file))
    summary = rescore_task(Path(db), topics, batch_size)
    # issue 8: best articles follow the new scores; the search index is rebuilt (flows/derived.py)
    refresh_derived_task(Path(db), Settings.from_env().story_window_days, all_stories=True)
    get_run_logger().info(
        "rescored %d articles: %d changed relevance", summary.articles, summary.changed
    )
    return summary
