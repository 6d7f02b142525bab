"""Per-feed scheduling and the ingest lock, through the real flow against a loopback server."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flows.ingest import RunSummary, ingest
from newsmon.locks import exclusive, lock_path
from tests.httpserver import LoopbackHTTPServer

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]


def rss(items: int, ttl: int | None = None) -> str:
    entries = "".join(
        f"<item><title>NATO item {i}</title><link>https://news.invalid/{i}</link>"
        f"<guid>item-{i}</guid><description>Allies meet.</description></item>"
        for i in range(items)
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    channel = f"<channel><title>t</title>{ttl_tag}{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def feeds_file(http_server: LoopbackHTTPServer, tmp_path: Path) -> Path:
    http_server.add("/quiet.xml", rss(3, ttl=120), content_type="application/rss+xml")
    http_server.add("/busy.xml", rss(5), content_type="application/rss+xml")
    path = tmp_path / "feeds.toml"
    path.write_text(
        f'[[feeds]]\nname = "quiet"\nurl = "{http_server.url("/quiet.xml")}"\n\n'
        f'[[feeds]]\nname = "busy"\nurl = "{http_server.url("/busy.xml")}"\n'
        "poll_interval_minutes = 5\n",
        encoding="utf-8",
    )
    return path


def test_only_due_feeds_are_polled_and_each_gets_a_next_poll_time(
    feeds_file: Path, tmp_path: Path, http_server: LoopbackHTTPServer
) -> None:
    db = tmp_path / "w.duckdb"
    first = ingest(db=str(db), feeds_file=str(feeds_file), only_due=True)
    assert isinstance(first, RunSummary)
    assert [f.status for f in first.feeds] == ["ok", "ok"]
    schedule = dict(
        (name, (reason, minutes))
        for name, reason, minutes in rows(
            db,
            "SELECT name, schedule_reason, "
            "round(epoch(next_poll_at - last_polled_at) / 60) FROM feeds",
        )
    )
    # the quiet feed asked for a 2-hour TTL; the busy one has a configured 5-minute interval
    assert schedule["quiet"][0] == "ttl" and 108 <= schedule["quiet"][1] <= 132
    assert schedule["busy"][0] == "configured" and 4 <= schedule["busy"][1] <= 6
    polls = (http_server.count("/quiet.xml"), http_server.count("/busy.xml"))

    second = ingest(db=str(db), feeds_file=str(feeds_file), only_due=True)
    assert second.feeds == [] and second.feeds_not_due == 2
    assert (http_server.count("/quiet.xml"), http_server.count("/busy.xml")) == polls

    # without only_due (a manual `newsmon run`) every feed is polled
    third = ingest(db=str(db), feeds_file=str(feeds_file))
    assert len(third.feeds) == 2


def test_a_second_ingest_does_nothing_while_one_holds_the_warehouse(
    feeds_file: Path, tmp_path: Path, http_server: LoopbackHTTPServer
) -> None:
    db = tmp_path / "w.duckdb"
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with exclusive(lock_path(db, "ingest")):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        skipped = ingest(db=str(db), feeds_file=str(feeds_file))
    finally:
        release.set()
        holder.join()
    assert skipped.skipped and skipped.feeds == []
    assert http_server.count("/quiet.xml") == 0
    done = ingest(db=str(db), feeds_file=str(feeds_file))
    assert not done.skipped and len(done.feeds) == 2
