"""The article batches of an ingest run, overlapped: fetch -> extract -> filter -> load.

Extraction is the bound of the pipeline (CPU, on every core; docs/performance.md), so everything
else hides behind it: while the process pool extracts batch k, batch k+1's pages are being
fetched (I/O, in a thread) and batch k-1 is filtered and loaded. Each stage is still one Prefect
task per batch over a plain function of ``extractors`` or ``warehouse``; the flow chains them as
futures and keeps at most ``DEPTH`` batches in flight, so memory is bounded by the batch size,
not by the number of new articles. What the sequential loop guaranteed still holds: fetches run
one batch at a time (so the per-host limits hold), and loads commit one whole batch at a time, in
order (so a crash leaves whole batches, and the next run picks up the rest).

Prefect walks a task's parameters looking for futures, into every field of every record (about
0.5 s per task for 200 articles); batches are passed as ``quote``/``opaque`` so it does not.
Each stage returns its output :class:`Timed`, and :func:`run_batches` reports the seconds each
stage was running (stages overlap, so they add up to more than the wall time).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import opaque, quote

from extractors.articles import warm_up
from extractors.fetch import FetchOptions
from extractors.pipeline import (
    ArticleCandidate,
    ArticleRecord,
    FetchedPage,
    batches,
    extract_fetched,
    fetch_pages,
    filter_articles,
)
from extractors.stories import StoryParams
from extractors.topics import TopicSet
from warehouse import loads
from warehouse.store import connect
from warehouse.stories import update_stories

DEPTH = 3  # batches in flight: one being fetched, one extracted, one filtered and loaded
RAMP_FROM = 40  # batch size from which the first batch is a quarter-size one

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A stage's output and when the stage ran (``time.time()``, comparable across threads)."""

    value: T
    started: float
    ended: float


def timed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Timed[T]:
    started = time.time()
    value = fn(*args, **kwargs)
    return Timed(value, started, time.time())


def busy_seconds(spans: Sequence[tuple[float, float]]) -> float:
    """How long at least one of the spans was running (their union), in seconds."""
    total = 0.0
    end = float("-inf")
    for s, e in sorted(spans):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


# --- the extraction pool ---------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None


def extraction_pool(workers: int) -> ProcessPoolExecutor | None:
    """One pool per process for the CPU-bound work (parsing feeds, extracting pages), started on
    first use (forkserver, not fork: Prefect runs threads).

    The fork server imports the extraction code once (``set_forkserver_preload``) and each worker
    forks from it, so workers start in milliseconds and share those pages of memory.
    """
    global _POOL
    if workers <= 1:
        return None
    if _POOL is None:
        context = get_context("forkserver")
        context.set_forkserver_preload(["extractors.articles", "extractors.feeds"])
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    return _POOL


def start_pool(workers: int) -> None:
    """Start the workers now (one job each), so they are ready when the first pages arrive;
    nothing to do when they are running already (``newsmon run`` starts them early)."""
    if _POOL is not None:
        return
    pool = extraction_pool(workers)
    if pool is not None:
        for _ in range(workers):
            pool.submit(warm_up)


def shutdown_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
        _POOL = None


# --- tasks: one per stage per batch ----------------------------------------------------------


@task(name="fetch-pages", cache_policy=NO_CACHE)
def fetch_pages_task(
    candidates: Sequence[ArticleCandidate], options: FetchOptions
) -> Timed[list[FetchedPage]]:
    return timed(fetch_pages, candidates, options)


@task(name="extract", cache_policy=NO_CACHE)
def extract_task(
    fetched: Timed[list[FetchedPage]], workers: int, max_text_chars: int
) -> Timed[list[ArticleRecord]]:
    out = timed(extract_fetched, fetched.value, extraction_pool(workers), max_text_chars)
    get_run_logger().info(
        "extracted %d of %d pages",
        sum(r.extraction_status == "extracted" for r in out.value),
        len(out.value),
    )
    return out


@task(name="filter", cache_policy=NO_CACHE)
def filter_task(
    records: Timed[list[ArticleRecord]], topics: TopicSet
) -> Timed[list[ArticleRecord]]:
    return timed(filter_articles, records.value, topics)


def _load(db_path: Path, records: Sequence[ArticleRecord], stories: StoryParams) -> int:
    """Load a batch (articles, entities, matches and their search-index entries, one
    transaction), then cluster it into stories while later batches are still extracting."""
    with connect(db_path) as con:
        loaded = loads.load_articles(con, records)
        update_stories(con, stories, only=[r.article_id for r in records])
    return loaded


@task(name="load", cache_policy=NO_CACHE)
def load_task(
    db_path: Path, records: Timed[list[ArticleRecord]], stories: StoryParams
) -> Timed[int]:
    return timed(_load, db_path, records.value, stories)


# --- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSettings:
    db_path: Path
    options: FetchOptions
    topics: TopicSet
    batch_size: int
    workers: int
    max_text_chars: int
    stories: StoryParams


@dataclass(frozen=True)
class _InFlight:
    """The four chained futures of one batch."""

    fetched: PrefectFuture[Timed[list[FetchedPage]]]
    extracted: PrefectFuture[Timed[list[ArticleRecord]]]
    filtered: PrefectFuture[Timed[list[ArticleRecord]]]
    loaded: PrefectFuture[Timed[int]]


def _submit(
    batch: Sequence[ArticleCandidate], cfg: BatchSettings, previous: _InFlight | None
) -> _InFlight:
    """Submit one batch's stages: its fetch after the previous fetch, its load after the
    previous load; extract and filter as soon as their input is ready."""
    # (``return_state=False`` is the default: it selects the typed overload for annotations)
    after_fetch: list[Any] = [previous.fetched] if previous else []
    after_load: list[Any] = [previous.loaded] if previous else []
    fetched = fetch_pages_task.submit(
        quote(batch), cfg.options, return_state=False, wait_for=after_fetch
    )
    extracted = extract_task.submit(
        opaque(fetched), cfg.workers, cfg.max_text_chars, return_state=False
    )
    filtered = filter_task.submit(opaque(extracted), quote(cfg.topics), return_state=False)
    loaded = load_task.submit(
        cfg.db_path, opaque(filtered), cfg.stories, return_state=False, wait_for=after_load
    )
    return _InFlight(fetched, extracted, filtered, loaded)


def run_batches(
    todo: Sequence[ArticleCandidate],
    cfg: BatchSettings,
    on_loaded: Callable[[Sequence[ArticleRecord]], None],
) -> dict[str, float]:
    """Fetch, extract, filter and load ``todo`` in batches, overlapped (see the module doc).

    Calls ``on_loaded`` with each batch's records once they are committed, in order; raises
    the first stage failure. Returns the seconds each stage was running.
    """
    spans: dict[str, list[tuple[float, float]]] = {
        "fetch": [],
        "extract": [],
        "filter": [],
        "load": [],
    }
    in_flight: deque[_InFlight] = deque()

    def collect(b: _InFlight) -> None:
        loaded = b.loaded.result()
        filtered = b.filtered.result()
        for stage, out in (
            ("fetch", b.fetched.result()),
            ("extract", b.extracted.result()),
            ("filter", filtered),
            ("load", loaded),
        ):
            spans[stage].append((out.started, out.ended))
        on_loaded(filtered.value)

    previous: _InFlight | None = None
    # the extraction pool idles until the first batch is fetched: make it a quarter-size one
    # (batches under RAMP_FROM articles gain nothing and keep their size)
    first = cfg.batch_size // 4 if cfg.batch_size >= RAMP_FROM else None
    for batch in batches(todo, cfg.batch_size, first):
        while len(in_flight) >= DEPTH:
            collect(in_flight.popleft())
        previous = _submit(batch, cfg, previous)
        in_flight.append(previous)
    while in_flight:
        collect(in_flight.popleft())
    return {stage: round(busy_seconds(s), 3) for stage, s in spans.items()}


__all__ = [
    "DEPTH",
    "BatchSettings",
    "Timed",
    "busy_seconds",
    "extraction_pool",
    "run_batches",
    "shutdown_pool",
    "start_pool",
    "timed",
]
