"""Crash safety: the ingest process is killed (SIGKILL) at five points, then run again.

Kill points: while polling (a feed that has not answered yet), after the polls are recorded and
while batch 1's pages are being fetched, after batch 1 is fetched and before it is extracted,
inside batch 1's load transaction (rows written, not committed), and between batch 1
(committed) and batch 2 (its pages being fetched). Slow servers hold the process at the first
two and the last (a route that does not answer until the test lets it);
``NEWSMON_TEST_PAUSE_AT`` holds it at the others (``newsmon/core/crashpoints.py``). Each process is
a real ``newsmon run`` (against the session's Prefect server), killed from outside.

After each kill the warehouse opens, holds only whole batches (every stored article has its
match rows), and then a normal run leaves every article exactly once, all extracted, with the
feeds' state (validators, status) recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from newsmon.flows.ingest import ingest
from tests.helpers import rows
from tests.hostile.suite import item, page, rss, write_feeds
from tests.httpserver import LoopbackHTTPServer, Reply
from tests.paths import ROOT

ARTICLES = 6  # 4 in feed "a", 2 in feed "b"
BATCH = 3
WAIT_S = 240.0  # a ceiling: five processes start at once, other tests share the two cores
# A gated request is held until the test opens the gate (always, at the latest in `finally`);
# the killed processes' HTTP timeouts outlast it, or a held fetch would fail after the default
# 10 s and the run finish on its own while the test is still busy with an earlier scenario.
HOLD_S = 600.0


@dataclass
class Scenario:
    point: str
    gate_path: str | None = None  # a route that holds the request until the test lets it go
    pause_at: str | None = None  # NEWSMON_TEST_PAUSE_AT
    articles_after_kill: int = 0  # whole batches committed before the kill
    items_after_kill: int = 0
    server: LoopbackHTTPServer = field(default_factory=LoopbackHTTPServer)
    gate: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None


SCENARIOS = [
    Scenario("poll", gate_path="/feeds/b.xml"),
    Scenario("fetch", gate_path="/pages/a0.html", items_after_kill=ARTICLES),
    Scenario("extract", pause_at="extract", items_after_kill=ARTICLES),
    Scenario("load", pause_at="load", items_after_kill=ARTICLES),
    Scenario(
        "between-batches",
        gate_path="/pages/b0.html",
        articles_after_kill=BATCH,
        items_after_kill=ARTICLES,
    ),
]


def _serve(s: Scenario) -> dict[str, str]:
    server = s.server.start()
    links = {f"a{n}": f"Alpha article {n}" for n in range(4)} | {
        f"b{n}": f"Beta article {n}" for n in range(2)
    }
    for slug, title in links.items():
        s.server.add(f"/pages/{slug}.html", page(title), content_type="text/html")
    for feed in ("a", "b"):
        items = "".join(
            item(t, server.url(f"/pages/{k}.html"), k) for k, t in links.items() if k[0] == feed
        )
        s.server.add(
            f"/feeds/{feed}.xml", rss(items), content_type="application/rss+xml", etag=f'"{feed}1"'
        )
    if s.gate_path is not None:  # that route answers only once the test opens the gate
        gated = s.gate_path
        body = page(links[gated.rsplit("/", 1)[1][:2]]) if gated.endswith(".html") else None
        feed_body = rss(
            "".join(
                item(t, server.url(f"/pages/{k}.html"), k) for k, t in links.items() if k[0] == "b"
            )
        )

        def held(h: Any) -> None:
            s.gate.wait(HOLD_S)
            if body is not None:
                s.server._send(h, Reply(body=body, content_type="text/html"))
            else:
                s.server._send(
                    h, Reply(body=feed_body, content_type="application/rss+xml", etag='"b1"')
                )

        s.server.add_handler(gated, held)
    return {"a": server.url("/feeds/a.xml"), "b": server.url("/feeds/b.xml")}


def _env(s: Scenario, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env.update(
        PREFECT_API_URL=api_url,
        NEWSMON_BATCH_SIZE=str(BATCH),
        NEWSMON_WORKERS="1",
        NEWSMON_ALLOW_PRIVATE_NETWORKS="true",
        NEWSMON_HTTP_RETRIES="0",
        NEWSMON_HTTP_TIMEOUT=str(HOLD_S),
        NEWSMON_HTTP_DEADLINE=str(HOLD_S),
    )
    if s.pause_at:
        env["NEWSMON_TEST_PAUSE_AT"] = s.pause_at
    return env


def _committed(db: Path) -> int:
    """Articles committed so far, or -1 while the run holds the warehouse."""
    try:
        return rows(db, "SELECT count(*) FROM articles WHERE NOT is_baseline")[0][0]
    except duckdb.Error:
        return -1


def _reached(s: Scenario, stderr_lines: list[str], db: Path) -> bool:
    if s.gate_path is not None:
        # batches overlap (flows/batches.py): batch 2's pages are fetched while batch 1 is still
        # being extracted and loaded, so "between batches" also waits for batch 1's commit
        return s.server.count(s.gate_path) > 0 and (
            s.articles_after_kill == 0 or _committed(db) == s.articles_after_kill
        )
    return any(f"paused at {s.pause_at}" in line for line in stderr_lines)


@pytest.mark.usefixtures("prefect_server")
def test_sigkill_at_every_point_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    assert api_url, "the session Prefect server has an API URL"
    runs: list[tuple[Scenario, Path, Path, list[str]]] = []
    try:
        for s in SCENARIOS:  # all killed processes start at once: imports overlap
            work = tmp_path / s.point
            work.mkdir()
            feeds = write_feeds(work / "feeds.toml", _serve(s))
            db = work / "w.duckdb"
            s.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "newsmon.cli",
                    "run",
                    "--init",
                    "--db",
                    str(db),
                    "--feeds",
                    str(feeds),
                ],
                cwd=ROOT,
                env=_env(s, api_url),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            lines: list[str] = []
            threading.Thread(
                target=lambda p=s.proc, out=lines: out.extend(
                    raw.decode(errors="replace")
                    for raw in iter(p.stderr.readline, b"")  # type: ignore[union-attr]
                ),
                daemon=True,
            ).start()
            runs.append((s, feeds, db, lines))

        for s, _, db, lines in runs:
            deadline = time.monotonic() + WAIT_S
            while not _reached(s, lines, db):
                assert s.proc is not None and s.proc.poll() is None, (
                    s.point,
                    "".join(lines)[-2000:],
                )
                assert time.monotonic() < deadline, (s.point, "never reached")
                time.sleep(0.05)
            assert s.proc is not None
            s.proc.send_signal(signal.SIGKILL)
            assert s.proc.wait(30) == -signal.SIGKILL
            s.gate.set()
            # the command ran under newsmon/cli/supervise.py: the kernel kills its child as the
            # supervisor dies (PR_SET_PDEATHSIG), a moment later
            gone = time.monotonic() + 10
            while _committed(db) == -1 and time.monotonic() < gone:
                time.sleep(0.02)
            # whatever was committed is whole: no half-written batch, no orphan rows
            assert rows(db, "SELECT count(*) FROM feed_items") == [(s.items_after_kill,)], s.point
            assert rows(db, "SELECT count(*) FROM articles WHERE NOT is_baseline") == [
                (s.articles_after_kill,)
            ], s.point
            assert rows(
                db,
                "SELECT count(*) FROM articles a WHERE NOT is_baseline AND NOT EXISTS "
                "(SELECT 1 FROM article_matches m WHERE m.article_id = a.article_id)",
            ) == [(0,)], s.point
            assert rows(db, "SELECT count(*), count(finished_at) FROM runs") == [(1, 0)], s.point

        for s, feeds, db, _ in runs:  # the next run finishes the work
            os.environ.update(NEWSMON_BATCH_SIZE=str(BATCH), NEWSMON_WORKERS="1")
            summary = ingest(db=str(db), feeds_file=str(feeds))
            assert summary.articles_new == ARTICLES - s.articles_after_kill, s.point
            assert rows(
                db,
                "SELECT count(*), count(DISTINCT canonical_url), "
                "count(*) FILTER (WHERE extraction_status = 'extracted') "
                "FROM articles WHERE NOT is_baseline",
            ) == [(ARTICLES, ARTICLES, ARTICLES)], s.point
            assert rows(db, "SELECT count(*) FROM feed_items") == [(ARTICLES,)], s.point
            assert rows(
                db,
                "SELECT count(*) FROM article_matches m JOIN articles a USING (article_id) "
                "WHERE NOT a.is_baseline",
            ) == [(ARTICLES,)], s.point
            assert rows(db, "SELECT name, etag, last_status FROM feeds ORDER BY name") in (
                [("a", '"a1"', st_a), ("b", '"b1"', st_b)]
                for st_a in ("ok", "not_modified")
                for st_b in ("ok", "not_modified")
            ), s.point
            assert rows(db, "SELECT count(*), count(finished_at) FROM runs") == [(2, 1)], s.point
            # nothing fetched more than twice (once by the killed run, once by the next)
            for slug in ("a0", "a1", "a2", "a3", "b0", "b1"):
                assert s.server.count(f"/pages/{slug}.html") <= 2, (s.point, slug)
    finally:
        for s in SCENARIOS:
            s.gate.set()
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait(10)
            s.server.stop()
