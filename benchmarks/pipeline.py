"""End-to-end pipeline benchmark: newsmon against its bound and against the naive script.

Usage: python -m benchmarks.pipeline [--feeds 40] [--items 50] [--latency 0.1] [--naive-feeds 4]
                                    [--runner local|dask] [--warehouse duckdb|ducklake]
                                    [--e2e-runs 2]

1. Generates a corpus (``benchmarks/corpus.py``: feeds x items article pages of 30-150 KB) and
   serves it on 127.0.0.1, one port per feed, ``--latency`` seconds per request, with ETags
   (``benchmarks/server.py``).
2. bound: the same pages extracted by trafilatura alone (``trafilatura.extract(html,
   output_format="json", with_metadata=True)``, as the naive script and benchmarks/extract.py call
   it) in a 2-process pool, from memory: no I/O, no Prefect, no warehouse; then, because the
   shipped topic has a relevance model (docs/topics.md), the encoder alone embedding what the
   model reads of each extracted page (title and lead, ``newsmon.extractors.embedding``) on the
   same two cores. The bound is the two in sequence: both are CPU work on the same cores, and the
   ingest must do both. The extraction-only bound is printed too (``extract_bound_...``). The
   workers' and the encoder's CPU time give the same bound on two otherwise idle cores
(``cpu_bound_...``). 3. e2e: a fresh process runs the real ``ingest`` flow over the corpus into a
   fresh DuckDB file (``benchmarks/run_ingest.py``), Prefect's temporary server included, then a
   second ingest in the same process (``rerun_s``: nothing new, as under a long-running scheduler),
   while the process tree's memory is sampled (``benchmarks/proctree.py``); then a third ingest in
   a new process (``rerun_process_s``: the same rerun as a cron job would pay for it).
4. naive: ``benchmarks/naive.py`` (feedparser, trafilatura.fetch_url + extract, one INSERT per
   row) over the first ``--naive-feeds`` feeds only, since it is slow; its rate is extrapolated
   to the whole corpus (it is sequential, so its rate does not depend on the corpus size).

The bound and the first ingest are each measured twice (``--e2e-runs``), taking turns (bound,
ingest, bound, ingest: each ingest a fresh process into a fresh warehouse), and the faster of
each counts, as ``timeit`` reports its best: other load on a shared machine only slows a run
down, and a host whose speed drifts between minutes then weighs on both sides alike. Every first
ingest is in the JSON (``e2e_runs_s``); memory is the largest of them. (With one, the bound is
measured before it and again at the end.)

``--runner dask`` runs the ingests with ``NEWSMON_TASK_RUNNER=dask`` (each batch one task on a
local Dask cluster of ``NEWSMON_WORKERS`` processes, started by the flow: its start is in e2e).
``--warehouse ducklake`` loads into a DuckLake warehouse (SQLite catalog, Parquet files) instead
of a DuckDB file.

The server counts requests by kind and status: the rerun must fetch no article page again.
Prints a table, then (last line) one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.corpus import CorpusSpec, PageInfo, write_corpus
from benchmarks.proctree import TreeSampler
from benchmarks.server import CorpusServer
from newsmon.prefect_server import QUIET_DEFAULTS
from newsmon.warehouse.lake import data_path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 8  # pages per pool job, as newsmon's extract_pages
PREFECT_ENV = {"PREFECT_HOME": str(ROOT / ".prefect"), **QUIET_DEFAULTS}


# --- bound: trafilatura alone, 2 processes, no I/O ----------------------------------------------


def _extract_json(chunk: Sequence[tuple[str, bytes]]) -> tuple[list[str], float]:
    """Extract a chunk of pages as a user would; return what the model reads of each page that
    gave text (title and lead), and the CPU time."""
    import trafilatura

    from newsmon.extractors.embedding import embed_text

    warnings.simplefilter("ignore")
    cpu = time.process_time()
    texts = []
    for url, html in chunk:
        out = trafilatura.extract(html, url=url, output_format="json", with_metadata=True)
        if out is not None:
            doc = json.loads(out)
            texts.append(embed_text(doc.get("title") or "", doc.get("text") or ""))
    return texts, time.process_time() - cpu


def _embed_all(texts: Sequence[str], batch: int = 64) -> tuple[float, float]:
    """The encoder alone over ``texts`` (both cores): wall and CPU seconds."""
    from newsmon.extractors.embedding import embed, load_encoder

    load_encoder()
    embed(list(texts[:8]))  # warm up
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        embed(texts[i : i + batch])
    return time.perf_counter() - started, time.process_time() - cpu


def _chunks(root: Path, infos: Sequence[PageInfo]) -> Iterator[list[tuple[str, bytes]]]:
    for i in range(0, len(infos), CHUNK):
        yield [
            (f"http://127.0.0.1{p.path}", (root / "pages" / p.path.lstrip("/")).read_bytes())
            for p in infos[i : i + CHUNK]
        ]


@dataclass(frozen=True)
class Bound:
    seconds: float  # wall time of the pool over every page
    cpu_s: float  # the workers' CPU time: what the pages cost, whatever else the machine runs
    extracted: int  # pages that gave text
    model_s: float = 0.0  # wall time of the encoder over what the model reads of those pages
    model_cpu_s: float = 0.0


def measure_bound(root: Path, infos: Sequence[PageInfo], workers: int = 2) -> Bound:
    """Extract every page in a pool of ``workers`` processes, as fast as it goes.

    Pages are read from disk ahead of the pool (at most 4 jobs per worker waiting), so memory
    stays small for any corpus size and the workers never wait.
    """
    with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
        list(pool.map(_extract_json, [next(_chunks(root, infos[:CHUNK]))] * workers))  # warm up
        started = time.perf_counter()
        pending: set[Future[tuple[list[str], float]]] = set()
        results: list[tuple[list[str], float]] = []
        for chunk in _chunks(root, infos):
            if len(pending) >= 4 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                results += [f.result() for f in done]
            pending.add(pool.submit(_extract_json, chunk))
        results += [f.result() for f in pending]
        seconds = time.perf_counter() - started
    texts = [t for chunk_texts, _ in results for t in chunk_texts]
    model_s, model_cpu_s = _embed_all(texts)
    return Bound(seconds, sum(cpu for _, cpu in results), len(texts), model_s, model_cpu_s)


# --- e2e: the ingest flow in a fresh process -----------------------------------------------------


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for newsmon processes: defaults (no NEWSMON_* from outside), 127.0.0.1
    allowed (the corpus server; newsmon refuses private addresses by default), quiet Prefect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    for key, value in PREFECT_ENV.items():
        env.setdefault(key, value)
    env["NEWSMON_ALLOWED_HOSTS"] = "127.0.0.1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


@dataclass
class IngestRuns:
    spawned: float
    lines: list[dict[str, Any]]
    counts: list[dict[str, int]]  # server requests during each run
    peak_rss: int
    peak_rss_by_role: dict[str, int]
    cpu_by_role: dict[str, float]


def run_ingest(
    db: Path,
    feeds: Path,
    server: CorpusServer,
    runs: int,
    runner: str = "local",
    sample_s: float = 0.2,
) -> IngestRuns:
    """Start ``benchmarks.run_ingest`` and read its lines, noting the requests of each run.

    The CPU time of this process meanwhile is the corpus server's (its threads answer the
    requests; the sampler's own share is about 1%): it runs on the same two cores.
    """
    cmd = [sys.executable, "-m", "benchmarks.run_ingest", "--db", str(db), "--feeds", str(feeds)]
    server.reset_counts()
    cpu_before = time.process_time()
    spawned = time.time()
    proc = subprocess.Popen(
        [*cmd, "--runs", str(runs)],
        cwd=ROOT,
        env=bench_env({"NEWSMON_TASK_RUNNER": runner}),
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    counts: list[dict[str, int]] = []
    assert proc.stdout is not None
    with TreeSampler(proc.pid, sample_s) as sampler:
        for raw in proc.stdout:
            if raw.startswith("{"):
                lines.append(json.loads(raw))
                counts.append(server.counts())
                server.reset_counts()
        if proc.wait() != 0 or len(lines) != runs:
            raise SystemExit(f"ingest process failed (exit {proc.returncode})")
    cpu = {**sampler.cpu_by_role(), "corpus server": round(time.process_time() - cpu_before, 1)}
    return IngestRuns(spawned, lines, counts, sampler.peak_rss, sampler.peak_rss_by_role, cpu)


def run_naive(db: Path, urls: Sequence[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.naive", "--db", str(db), *urls],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ensure_prefect_database() -> None:
    """Prefect's first start on a new PREFECT_HOME migrates its database (about 10 s): do it
    before measuring, so e2e_s is what every later run pays."""
    env = bench_env()
    if env.get("PREFECT_API_URL") or (Path(env["PREFECT_HOME"]) / "prefect.db").exists():
        return
    code = "from prefect.server.api.server import SubprocessASGIServer as S; S().start()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # stopped at exit


# --- report --------------------------------------------------------------------------------------


def write_feeds(path: Path, urls: Sequence[str]) -> Path:
    lines = []
    for i, url in enumerate(urls):
        lines += ["[[feeds]]", f'name = "Site {i:03d}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def first_ingest_s(runs: IngestRuns) -> float:
    """The first ingest's wall time, from the process's start to the flow's return."""
    ended: float = runs.lines[0]["ended"]
    return ended - runs.spawned


def summarise(
    args: argparse.Namespace,
    infos: Sequence[PageInfo],
    bounds: Sequence[Bound],
    firsts: Sequence[IngestRuns],
    cold: IngestRuns,
    naive: dict[str, Any],
) -> dict[str, Any]:
    """The JSON result. ``firsts``: the processes of the first ingests (the first of them also
    ran the rerun); ``bounds`` the bound's measurements; the faster of each counts."""
    ingest = firsts[0]
    best = min(firsts, key=first_ingest_s)
    first, rerun = best.lines[0], ingest.lines[1]
    articles = first["articles_new"]
    e2e = first_ingest_s(best)
    stages = first["stage_seconds"]
    per_s = articles / e2e
    # the best of each (module docstring); the CPU-time figure is the rate on two otherwise
    # idle cores
    bound_per_s = len(infos) / min(b.seconds + b.model_s for b in bounds)
    extract_bound_per_s = len(infos) / min(b.seconds for b in bounds)
    cpu_bound_per_s = len(infos) / (min(b.cpu_s + b.model_cpu_s for b in bounds) / 2)
    naive_per_s = naive["articles"] / naive["seconds"]
    return {
        "articles": articles,
        "runner": args.runner,
        "warehouse": args.warehouse,
        "feeds": args.feeds,
        "items": args.items,
        "latency_s": args.latency,
        "html_mb": round(sum(p.bytes for p in infos) / 1e6, 1),
        "e2e_s": round(e2e, 2),
        "e2e_runs_s": [round(first_ingest_s(r), 2) for r in firsts],
        "articles_per_s": round(per_s, 1),
        "bound_articles_per_s": round(bound_per_s, 1),
        "ratio_to_bound": round(per_s / bound_per_s, 3),
        "extract_bound_articles_per_s": round(extract_bound_per_s, 1),
        "ratio_to_extract_bound": round(per_s / extract_bound_per_s, 3),
        "bound_model_s": round(min(b.model_s for b in bounds), 2),
        "cpu_bound_articles_per_s": round(cpu_bound_per_s, 1),
        "ratio_to_cpu_bound": round(per_s / cpu_bound_per_s, 3),
        # the same without the process start and Prefect's temporary server (flow body only)
        "flow_ratio_to_bound": round(articles / stages["flow"] / bound_per_s, 3),
        "naive_articles": naive["articles"],
        "naive_s": naive["seconds"],
        "naive_articles_per_s": round(naive_per_s, 2),
        "naive_extrapolated": naive["articles"] < articles,
        "speedup_vs_naive": round(per_s / naive_per_s, 2),
        "rerun_s": round(rerun["ended"] - rerun["called"], 2),
        "rerun_ratio": round((rerun["ended"] - rerun["called"]) / e2e, 3),
        "rerun_process_s": round(cold.lines[0]["ended"] - cold.spawned, 2),
        "rerun_pages_fetched": ingest.counts[1].get("page_200", 0),
        "rerun_requests": ingest.counts[1],
        "first_requests": best.counts[0],
        "peak_rss_mb": round(max(r.peak_rss for r in firsts) / 2**20, 1),
        "peak_rss_mb_by_role": {
            role: round(max(r.peak_rss_by_role.get(role, 0) for r in firsts) / 2**20)
            for role in best.peak_rss_by_role
        },
        "stage_s": {
            # process start and imports; then waiting for Prefect's temporary server (booting
            # meanwhile) and the flow run's own overhead
            "startup": round(first["imported"] - best.spawned, 2),
            "prefect": round(
                first["called"]
                - first["imported"]
                + first["ended"]
                - first["called"]
                - stages["flow"],
                2,
            ),
            **{k: v for k, v in stages.items() if k != "flow"},
        },
        "cpu_s": best.cpu_by_role,
        "relevant": first["relevant"],
        "relevant_expected": sum(p.relevant for p in infos),
        "failed": first["articles_failed"],
    }


def print_table(r: dict[str, Any]) -> None:
    naive_note = " (extrapolated from a subset)" if r["naive_extrapolated"] else ""
    rows = [
        ("corpus", f"{r['feeds']} feeds x {r['items']} items, {r['html_mb']} MB of HTML"),
        ("task runner", r["runner"]),
        ("warehouse", r["warehouse"]),
        ("articles", f"{r['articles']} ({r['relevant']} relevant, {r['failed']} failed)"),
        (
            "e2e (fresh process, Prefect incl.)",
            f"{r['e2e_s']:.1f} s (best of {', '.join(f'{x:.1f}' for x in r['e2e_runs_s'])})",
        ),
        ("newsmon", f"{r['articles_per_s']:.1f} articles/s"),
        (
            "bound (trafilatura, then the encoder)",
            f"{r['bound_articles_per_s']:.1f} articles/s (encoder {r['bound_model_s']:.1f} s)",
        ),
        ("ratio to bound", f"{r['ratio_to_bound']:.2f}"),
        (
            "  bound of trafilatura alone",
            f"{r['extract_bound_articles_per_s']:.1f} articles/s, "
            f"ratio {r['ratio_to_extract_bound']:.2f}",
        ),
        (
            "  bound from CPU time (idle cores)",
            f"{r['cpu_bound_articles_per_s']:.1f} articles/s, ratio {r['ratio_to_cpu_bound']:.2f}",
        ),
        ("  the flow alone (no start-up)", f"{r['flow_ratio_to_bound']:.2f}"),
        ("naive loop", f"{r['naive_articles_per_s']:.2f} articles/s{naive_note}"),
        ("speedup vs naive", f"{r['speedup_vs_naive']:.1f}x"),
        ("rerun (same process)", f"{r['rerun_s']:.2f} s ({100 * r['rerun_ratio']:.1f}% of e2e)"),
        ("rerun (new process)", f"{r['rerun_process_s']:.1f} s"),
        ("rerun article pages fetched", str(r["rerun_pages_fetched"])),
        ("peak RSS, process tree", f"{r['peak_rss_mb']:.0f} MB"),
    ]
    rows += [(f"  stage: {k}", f"{v:.2f} s") for k, v in r["stage_s"].items()]
    rows += [(f"  cpu: {k}", f"{v:.1f} s") for k, v in r["cpu_s"].items()]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def fresh(db: Path) -> Path:
    """``db`` with no warehouse there (a kept workdir's old file, or old lake, removed)."""
    db.unlink(missing_ok=True)
    shutil.rmtree(data_path(db), ignore_errors=True)
    return db


@contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
    else:
        with tempfile.TemporaryDirectory(prefix="newsmon-bench-") as tmp:
            yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--items", type=int, default=50, help="items per feed")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    parser.add_argument("--naive-feeds", type=int, default=4, help="feeds the naive loop reads")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--e2e-runs",
        type=int,
        choices=range(1, 6),
        default=2,
        metavar="N",
        help="first ingests to measure, taking turns with the bound; the faster counts (1-5)",
    )
    parser.add_argument(
        "--runner", choices=("local", "dask"), default="local", help="NEWSMON_TASK_RUNNER"
    )
    parser.add_argument(
        "--warehouse",
        choices=("duckdb", "ducklake"),
        default="duckdb",
        help="the warehouse's format: a DuckDB file or a DuckLake (warehouse/lake.py)",
    )
    parser.add_argument("--templates", type=Path, help="take page <head>s from this directory")
    parser.add_argument("--workdir", help="keep the corpus and warehouses here")
    args = parser.parse_args(argv)

    spec = CorpusSpec(feeds=args.feeds, items=args.items, seed=args.seed, templates=args.templates)
    with workdir(args.workdir) as work:
        infos = write_corpus(spec, work / "corpus")
        ensure_prefect_database()
        with CorpusServer(work / "corpus", args.latency) as server:
            feeds = write_feeds(work / "feeds.toml", server.feed_urls)
            db = work / f"newsmon.{args.warehouse}"
            bounds = [measure_bound(work / "corpus", infos)]
            firsts = [run_ingest(fresh(db), feeds, server, runs=2, runner=args.runner)]
            for i in range(2, args.e2e_runs + 1):
                bounds.append(measure_bound(work / "corpus", infos))
                again = fresh(work / f"newsmon-{i}.{args.warehouse}")
                firsts.append(run_ingest(again, feeds, server, runs=1, runner=args.runner))
            cold = run_ingest(db, feeds, server, runs=1, runner=args.runner)
            naive = run_naive(fresh(work / "naive.duckdb"), server.feed_urls[: args.naive_feeds])
            if len(bounds) < 2:
                bounds.append(measure_bound(work / "corpus", infos))
    result = summarise(args, infos, bounds, firsts, cold, naive)
    print_table(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
