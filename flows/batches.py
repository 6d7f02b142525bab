"""The article batches of an ingest run, overlapped: fetch -> extract -> filter -> load.

Extraction is the bound of the pipeline (CPU, on every core; docs/performance.md), so everything
else hides behind it: while the process pool extracts batch k, batch k+1's pages are being
fetched (I/O, in a thread) and batch k-1 is filtered and loaded. A batch is three Prefect tasks
over plain functions of ``extractors`` and ``warehouse`` (fetch; extract and filter; load: each
task run costs the Prefect server about 50 ms of CPU, so a stage with no wait of its own shares
a task); the flow chains them as futures and keeps at most ``DEPTH`` batches in flight, so
memory is bounded by the batch size, not by the number of new articles. What the sequential
loop guaranteed still holds: fetches run one batch at a time (so the per-host limits hold), and
loads commit one whole batch at a time, in order (so a crash leaves whole batches, and the next
run picks up the rest).

With ``NEWSMON_TASK_RUNNER=dask`` (:func:`run_batches_distributed`) a batch is one task on a
Dask worker (fetch, extract in the worker's own process, filter: Dask workers cannot start
process pools, and a Dask task costs about 0.1 s, so the unit is the batch), several batches run
at once on the cluster, and this process loads each one as it comes back, in order: the
warehouse keeps a single writer.

Prefect walks a task's parameters looking for futures, into every field of every record (about
0.5 s per task for 200 articles); batches are passed as ``quote``/``opaque`` so it does not.
Each task returns when its stages ran (:class:`Timed`, :class:`Processed`), and
:func:`run_batches` reports the seconds each stage was running (stages overlap, so they add up
to more than the wall time).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import opaque, quote

from newsmon.extractors.articles import warm_up
from newsmon.extractors.fetch import FetchOptions
from newsmon.extractors.language import load_model
from newsmon.extractors.pipeline import (
    ArticleCandidate,
    ArticleRecord,
    FetchedPage,
    batches,
    extract_fetched,
    fetch_pages,
    filter_articles,
)
from newsmon.extractors.stories import StoryParams
from newsmon.extractors.topics import TopicSet
from newsmon.warehouse import loads
from newsmon.warehouse.store import connect, duckdb_threads
from newsmon.warehouse.stories import update_stories

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


class _Spans:
    """When each batch stage ran, per stage; :meth:`busy` gives the seconds each was running."""

    STAGES = ("fetch", "extract", "filter", "load")

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[float, float]]] = {stage: [] for stage in self.STAGES}

    def add(self, stage: str, started: float, ended: float) -> None:
        self._spans[stage].append((started, ended))

    def busy(self) -> dict[str, float]:
        return {stage: round(busy_seconds(s), 3) for stage, s in self._spans.items()}


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
        context.set_forkserver_preload(["newsmon.extractors.articles", "newsmon.extractors.feeds"])
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


def prepare(workers: int) -> None:
    """Get this process ready before its run starts (``newsmon run`` calls this while Prefect's
    temporary server boots, when a core is otherwise idle): start the extraction workers; load
    the language model that filtering loads on first use (0.5 s; on a new warehouse the
    baseline is filtered first, so the run would otherwise wait for it); import what Prefect
    imports at a process's first flow run, the encoder it serializes the flow's parameters
    with (fastapi's: 0.3-0.5 s between the run's creation and its first step)."""
    start_pool(workers)
    load_model()
    importlib.import_module("fastapi.encoders")  # a dependency of prefect's, not of ours


def shutdown_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
        _POOL = None


@dataclass(frozen=True)
class Processed:
    """A batch's filtered records, and when each stage that made them ran (``time.time()``)."""

    records: list[ArticleRecord]
    spans: dict[str, tuple[float, float]]


def _stages(
    extracted: Timed[list[ArticleRecord]], filtered: Timed[list[ArticleRecord]]
) -> tuple[tuple[str, Timed[Any]], ...]:
    return (("extract", extracted), ("filter", filtered))


# --- tasks: fetch, extract and filter, load ---------------------------------------------------


@task(name="fetch-pages", cache_policy=NO_CACHE)
def fetch_pages_task(
    candidates: Sequence[ArticleCandidate], options: FetchOptions
) -> Timed[list[FetchedPage]]:
    return timed(fetch_pages, candidates, options)


@task(name="extract-filter", cache_policy=NO_CACHE)
def extract_filter_task(
    fetched: Timed[list[FetchedPage]], workers: int, max_text_chars: int, topics: TopicSet
) -> Processed:
    """Extract a batch's pages (on the process pool), then filter them: one task, not two, as
    each task run costs the Prefect server about 50 ms of CPU, taken from extraction."""
    extracted = timed(extract_fetched, fetched.value, extraction_pool(workers), max_text_chars)
    get_run_logger().info(
        "extracted %d of %d pages",
        sum(r.extraction_status == "extracted" for r in extracted.value),
        len(extracted.value),
    )
    filtered = timed(filter_articles, extracted.value, topics)
    spans = {stage: (out.started, out.ended) for stage, out in _stages(extracted, filtered)}
    return Processed(filtered.value, spans)


def _load(db_path: Path, records: Sequence[ArticleRecord], stories: StoryParams) -> int:
    """Load a batch (articles, entities, matches and their search-index entries, one
    transaction), then cluster it into stories while later batches are still extracting.

    On one DuckDB thread: a batch's statements are small (200 rows, their index terms), and
    DuckDB's default of a thread per core spent a third more CPU on them, and took no less
    time, even alone (indexing 2 x 200 articles: 0.45-0.66 against 0.80-0.96 CPU-s); during
    an ingest the extraction workers have the cores anyway."""
    with connect(db_path) as con, duckdb_threads(con, 1):
        loaded = loads.load_articles(con, records)
        update_stories(con, stories, only=[r.article_id for r in records])
    return loaded


@task(name="load", cache_policy=NO_CACHE)
def load_task(db_path: Path, batch: Processed, stories: StoryParams) -> Timed[int]:
    return timed(_load, db_path, batch.records, stories)


@task(name="process-batch", cache_policy=NO_CACHE)
def process_batch_task(
    candidates: Sequence[ArticleCandidate],
    options: FetchOptions,
    topics: TopicSet,
    max_text_chars: int,
) -> Processed:
    """Fetch, extract (in this process) and filter one batch: the unit of work on a Dask
    worker."""
    fetched = timed(fetch_pages, candidates, options)
    extracted = timed(extract_fetched, fetched.value, None, max_text_chars)
    filtered = timed(filter_articles, extracted.value, topics)
    stages = (("fetch", fetched), *_stages(extracted, filtered))
    return Processed(filtered.value, {stage: (out.started, out.ended) for stage, out in stages})


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
    """The three chained futures of one batch."""

    fetched: PrefectFuture[Timed[list[FetchedPage]]]
    processed: PrefectFuture[Processed]
    loaded: PrefectFuture[Timed[int]]


def _submit(
    batch: Sequence[ArticleCandidate], cfg: BatchSettings, previous: _InFlight | None
) -> _InFlight:
    """Submit one batch's tasks: its fetch after the previous fetch, its load after the
    previous load; extraction and filtering as soon as the pages are fetched."""
    # (``return_state=False`` is the default: it selects the typed overload for annotations)
    after_fetch: list[Any] = [previous.fetched] if previous else []
    after_load: list[Any] = [previous.loaded] if previous else []
    fetched = fetch_pages_task.submit(
        quote(batch), cfg.options, return_state=False, wait_for=after_fetch
    )
    processed = extract_filter_task.submit(
        opaque(fetched), cfg.workers, cfg.max_text_chars, quote(cfg.topics), return_state=False
    )
    loaded = load_task.submit(
        cfg.db_path, opaque(processed), cfg.stories, return_state=False, wait_for=after_load
    )
    return _InFlight(fetched, processed, loaded)


def run_batches(
    todo: Sequence[ArticleCandidate],
    cfg: BatchSettings,
    on_loaded: Callable[[Sequence[ArticleRecord]], None],
) -> dict[str, float]:
    """Fetch, extract, filter and load ``todo`` in batches, overlapped (see the module doc).

    Calls ``on_loaded`` with each batch's records once they are committed, in order; raises
    the first stage failure. Returns the seconds each stage was running.
    """
    spans = _Spans()
    in_flight: deque[_InFlight] = deque()

    def collect(b: _InFlight) -> None:
        loaded = b.loaded.result()
        processed = b.processed.result()
        fetched = b.fetched.result()
        spans.add("fetch", fetched.started, fetched.ended)
        for stage, (started, ended) in processed.spans.items():
            spans.add(stage, started, ended)
        spans.add("load", loaded.started, loaded.ended)
        on_loaded(processed.records)

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
    return spans.busy()


def split_host_limits(options: FetchOptions, batches_at_once: int) -> FetchOptions:
    """The fetch limits for one of ``batches_at_once`` batches fetching at the same time (on
    Dask workers), so that together they stay within the configured per-host and total limits
    (at least one request each: beyond that many batches a site sees one request per batch)."""
    n = max(1, batches_at_once)
    return replace(
        options,
        per_host=max(1, options.per_host // n),
        max_concurrency=max(1, options.max_concurrency // n),
    )


@contextmanager
def dask_runner(address: str, workers: int) -> Iterator[tuple[TaskRunner[Any], int]]:
    """A started ``DaskTaskRunner`` (prefect-dask) and how many batches to keep in flight on it.

    With an ``address``, the cluster there (``NEWSMON_DASK_ADDRESS``); else a local cluster of
    ``workers`` single-threaded processes, listening on 127.0.0.1 only.
    In flight: one batch per worker thread, plus one, so no worker waits while this process
    loads a batch.
    """
    from prefect_dask.task_runners import DaskTaskRunner  # dask loads only when used

    # distributed sets its loggers to INFO on import: a line per worker start and stop in the
    # run's output. Its warnings still show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        runner = DaskTaskRunner(address=address)
    else:
        cluster = {
            "n_workers": workers,
            # one thread: a second one (to fetch a batch while another extracts) measured no
            # faster, its GIL contention costing what the overlap gained (docs/performance.md)
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            # the scheduler serves its HTTP routes (health, metrics) even without a dashboard:
            # on a free loopback port, not the fixed 8787 two clusters would contend for
            "dashboard_address": "127.0.0.1:0",
        }
        runner = DaskTaskRunner(cluster_kwargs=cluster)
    with runner:
        threads = sum(runner.client.nthreads().values())  # type: ignore[no-untyped-call]
        yield runner, max(1, threads) + 1


def run_batches_distributed(
    todo: Sequence[ArticleCandidate],
    cfg: BatchSettings,
    runner: TaskRunner[Any],
    on_loaded: Callable[[Sequence[ArticleRecord]], None],
    batches_at_once: int,
) -> dict[str, float]:
    """Like :func:`run_batches`, with each batch's fetch, extraction and filtering as one task
    on ``runner`` (a started ``DaskTaskRunner``), ``batches_at_once`` of them in flight; this
    process loads the batches in order as they finish (one writer, whole batches)."""
    spans = _Spans()
    options = split_host_limits(cfg.options, batches_at_once)
    in_flight: deque[PrefectFuture[Processed]] = deque()

    def collect(future: PrefectFuture[Processed]) -> None:
        processed = future.result()
        for stage, (started, ended) in processed.spans.items():
            spans.add(stage, started, ended)
        # on this process's thread-pool runner, not the cluster; waited for: loads stay in order
        batch = quote(processed)
        loaded = load_task.submit(cfg.db_path, batch, cfg.stories, return_state=False).result()
        spans.add("load", loaded.started, loaded.ended)
        on_loaded(processed.records)

    for batch in batches(todo, cfg.batch_size):
        while len(in_flight) >= batches_at_once:
            collect(in_flight.popleft())
        # plain values: Dask rebuilds tuples, and Prefect's annotations are tuples, so a
        # quote() would reach the worker as a bare tuple (the runner walks them anyway)
        parameters = {
            "candidates": list(batch),
            "options": options,
            "topics": cfg.topics,
            "max_text_chars": cfg.max_text_chars,
        }
        in_flight.append(runner.submit(process_batch_task, parameters))
    while in_flight:
        collect(in_flight.popleft())
    return spans.busy()


__all__ = [
    "DEPTH",
    "BatchSettings",
    "Processed",
    "Timed",
    "busy_seconds",
    "dask_runner",
    "extraction_pool",
    "prepare",
    "process_batch_task",
    "run_batches",
    "run_batches_distributed",
    "shutdown_pool",
    "split_host_limits",
    "start_pool",
    "timed",
]
