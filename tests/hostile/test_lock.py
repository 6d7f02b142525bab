"""A DuckDB write that fails: another process holds the warehouse's write lock during a run.

``newsmon run`` waits for the lock (30 s by default; 1 s here), then fails cleanly: exit status
1, one sentence naming the file and the cause, no traceback, and the warehouse exactly as it was
(compared table by table). Once the lock is released, the next run completes normally.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.warehouse import store
from tests.httpserver import LoopbackHTTPServer
from tests.sample import serve_sample, write_feeds_toml

HOLD = (
    "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
    "print('locked', flush=True); time.sleep(60)"
)


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {  # every schema: the search index (fts_main_articles) has tables too
            (name if schema == "main" else f"{schema}.{name}"): f'"{schema}"."{name}"'
            for schema, name in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        return {
            k: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))  # type: ignore[misc]
            for k, t in tables.items()
        }


@pytest.mark.usefixtures("prefect_server")
def test_a_locked_warehouse_fails_the_run_cleanly_and_changes_nothing(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(store.connect.__wrapped__.__kwdefaults__, "wait_s", 1.0)  # type: ignore[attr-defined]
    feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "--init", "--db", str(db), "--feeds", str(feeds)])
    assert first.exit_code == 0, first.output
    # new entries for the next run: it would write if it could
    http_server.reset_stats()
    for path in list(http_server._routes):
        if path.startswith("/feeds/"):
            http_server.add(
                path,
                b"<rss version='2.0'><channel><title>x</title><item><title>New</title>"
                b"<link>http://127.0.0.1:1/new</link></item></channel></rss>",
                content_type="application/rss+xml",
            )
    before = _dump(db)

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        start = time.monotonic()
        locked = runner.invoke(cli, ["run", "--init", "--db", str(db), "--feeds", str(feeds)])
        elapsed = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait(10)

    assert locked.exit_code == 1
    message = locked.output.strip().splitlines()[-1]
    assert message.startswith("Error: ") and "locked by another newsmon process" in message
    assert str(db) in message and "Traceback" not in locked.output
    assert elapsed < 60  # it gave up; the figure itself is not asserted
    assert _dump(db) == before

    again = runner.invoke(cli, ["run", "--init", "--db", str(db), "--feeds", str(feeds)])
    assert again.exit_code == 0, again.output
    assert _dump(db)["feed_items"] != before["feed_items"]
