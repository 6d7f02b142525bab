"""Per-feed scheduling and the ingest lock, through the real flow against a loopback server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.cli.render import format_summary
from newsmon.core.locks import exclusive, lock_path
from newsmon.flows.ingest import RunSummary, ingest
from tests.helpers import rows
from tests.httpserver import LoopbackHTTPServer
from tests.sample import serve_sample, write_feeds_toml

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
            release.wait()  # until the skipped ingest has returned (set in `finally`)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        skipped = ingest(db=str(db), feeds_file=str(feeds_file))
    finally:
        release.set()
        holder.join()
    assert skipped.skipped and skipped.feeds == []
    assert http_server.count("/quiet.xml") == 0
    done = ingest(db=str(db), feeds_file=str(feeds_file))
    assert not done.skipped and len(done.feeds) == 2


def test_feeds_list_shows_health_and_next_poll(feeds_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    args = ["feeds", "list", "--db", str(db), "--feeds", str(feeds_file)]
    before = CliRunner().invoke(cli, args, prog_name="newsmon")
    assert before.exit_code == 0, before.output
    assert before.output.count("never polled") == 2
    ingest(db=str(db), feeds_file=str(feeds_file))
    after = CliRunner().invoke(cli, args, prog_name="newsmon")
    lines = after.output.splitlines()
    assert lines[0].split() == [
        "name", "status", "reason", "last_success", "error_streak", "next_poll_utc", "why",
    ]  # fmt: skip
    quiet = next(line for line in lines if line.startswith("quiet "))
    assert " ok " in quiet and quiet.rstrip().endswith("ttl")


def test_two_ingests_at_once_while_sql_reads(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("NEWSMON_INGEST_LOCK_WAIT", "120")  # the second waits, then runs
    errors: list[BaseException] = []
    results: list[RunSummary] = []

    def run() -> None:
        try:
            results.append(ingest(db=str(db), feeds_file=str(feeds)))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    answers: list[tuple[int, str]] = []
    while any(t.is_alive() for t in threads) or not answers:
        if db.exists():
            sql = subprocess.run(
                [sys.executable, "-m", "newsmon.cli", "sql", "--db", str(db),
                 "SELECT count(*) AS n FROM articles"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            answers.append((sql.returncode, sql.stderr))
        time.sleep(0.2)
    for t in threads:
        t.join()
    assert errors == []
    assert answers and all(code == 0 for code, _ in answers), answers
    assert sorted(r.articles_new for r in results) == [0, 13]  # one did the work, once
    assert rows(db, "SELECT count(*), count(DISTINCT canonical_url) FROM articles") == [(16, 16)]
    assert rows(db, "SELECT count(*), count(DISTINCT (feed_id, guid)) FROM feed_items") == [
        (14, 14)
    ]
    assert rows(db, "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL") == [(2,)]


def test_feeds_failing_for_a_day_are_in_the_run_summary(
    feeds_file: Path, tmp_path: Path, http_server: LoopbackHTTPServer
) -> None:
    db = tmp_path / "w.duckdb"
    ingest(db=str(db), feeds_file=str(feeds_file))
    http_server.add("/busy.xml", "gone", status=404)
    with duckdb.connect(str(db)) as con:  # as if it had been failing since the day before
        con.execute(
            "UPDATE feeds SET error_streak = 30, last_success_at = now() - INTERVAL 2 DAY "
            "WHERE name = 'busy'"
        )
    summary = ingest(db=str(db), feeds_file=str(feeds_file))
    assert summary.failing_for_a_day == ["busy (http_4xx, 31 failed polls)"]
    assert "Failing for a day or more" in format_summary(summary)
