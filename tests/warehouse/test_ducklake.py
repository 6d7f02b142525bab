"""DuckLake warehouses (warehouse/lake.py): the same schema, views, search and CLI as a DuckDB
file, and several writing processes at once without an article stored twice."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from newsmon.core.errors import WarehouseError
from newsmon.core.locks import exclusive, lock_path
from newsmon.warehouse import extensions, lake, store
from newsmon.warehouse.baseline import baseline_records
from newsmon.warehouse.migrations import migrate
from newsmon.warehouse.polls import FeedRow, feed_id_for
from newsmon.warehouse.search import SearchOptions, search
from newsmon.warehouse.store import bulk_insert, connect, is_conflict, retry_conflicts, transaction
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT
from tests.sample import news_page, rss, shard_feeds, write_feeds_toml

NEWSMON = [sys.executable, "-m", "newsmon.cli"]


def schema(db: Path) -> list[tuple[str, ...]]:
    """Every table's and view's columns and types, and every view's name."""
    with connect(db, read_only=True) as con:
        rows = con.execute(
            """
            SELECT table_name, column_name, data_type FROM duckdb_columns()
            WHERE database_name = current_database() AND table_name <> ?
            ORDER BY ALL
            """,
            [lake.TURNS],
        ).fetchall()
        views = con.execute(
            "SELECT view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal ORDER BY 1"
        ).fetchall()
    return [tuple(r) for r in rows + views]


def test_a_lake_has_the_file_warehouse_schema_views_and_search(tmp_path: Path) -> None:
    """`newsmon init` makes either; the lake has every table, column, type and view of the file
    (its write_turns table aside), the baseline, stories, and search with the same scores."""
    paths = [tmp_path / "w.duckdb", tmp_path / "w.ducklake"]
    for path in paths:
        out = subprocess.run(
            [*NEWSMON, "init", "--db", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"Created {path} (schema version" in out.stdout
    assert (tmp_path / "w.ducklake.files").is_dir()  # the lake's Parquet files
    file_schema, lake_schema = (schema(p) for p in paths)
    assert ("articles", "canonical_url", "VARCHAR") in file_schema
    assert ("relevant_articles",) in file_schema
    assert lake_schema == file_schema

    results = []
    for path in paths:
        with connect(path, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM articles WHERE is_baseline").fetchone() == (
                len(baseline_records()),
            )
            assert con.execute(
                "SELECT count(*) FROM articles WHERE story_id IS NULL"
            ).fetchone() == (0,)
            results.append(search(con, "NATO defence", SearchOptions()).rows)
            # match_bm25's optional `fields` (DuckLake keeps a NULL default as text: the lake's
            # copy of the macro defaults to '')
            results.append(
                con.execute(
                    """
                    SELECT article_id, fts_main_articles.match_bm25(article_id, 'alliance'),
                           fts_main_articles.match_bm25(article_id, 'alliance', fields := 'title')
                    FROM articles ORDER BY 1
                    """
                ).fetchall()
            )
    assert len(results[0]) == len(baseline_records())
    assert any(s is not None for _, s, _ in results[1])
    assert results[2:] == results[:2]  # the same BM25 scores from the lake's copy of the index

    # `newsmon sql` reads a lake as it reads a file: read-only
    refused = subprocess.run(
        [*NEWSMON, "sql", "--db", str(paths[1]), "DELETE FROM articles"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "read-only" in refused.stderr


def feed_row(url: str, name: str) -> FeedRow:
    return FeedRow(
        feed_id=feed_id_for(url),
        name=name,
        url=url,
        tags=[],
        language=None,
        poll_interval_minutes=None,
        added_at=datetime.now(UTC),
    )


def add_feed(con: duckdb.DuckDBPyConnection, row: FeedRow) -> None:
    with transaction(con):
        bulk_insert(con, "feeds", [row], key=("feed_id",))


def collide(a: duckdb.DuckDBPyConnection, b: duckdb.DuckDBPyConnection, url: str) -> BaseException:
    """a and b add the feed ``url`` in overlapping newsmon transactions, b committing first;
    a's commit fails, and a runs its write again as the write functions do. Returns a's error."""
    with pytest.raises(duckdb.Error) as info, transaction(a):
        bulk_insert(a, "feeds", [feed_row(url, "from-a")], key=("feed_id",))
        add_feed(b, feed_row(url, "from-b"))
    retry_conflicts(add_feed)(a, feed_row(url, "from-a"))
    return info.value


def test_a_new_lake_is_set_up_by_one_process_at_a_time(tmp_path: Path) -> None:
    """Two first runs at once (two shards) both attach a new lake, and DuckLake creates its
    catalog's tables as it attaches: SQLite refused one of them ("database is locked"). A
    writer that finds the catalog new takes the lake's create lock first; here the test holds
    it (as another process would), and the attach waits, then finds the lake and opens it."""
    db = tmp_path / "w.ducklake"
    opened: list[object] = []
    attach = threading.Thread(target=lambda: opened.append(lake.open_lake(db, read_only=False)))
    with exclusive(lock_path(db, "create")):
        attach.start()
        attach.join(1.0)
        # nothing set up behind the lock's back (the catalog may exist, in WAL mode, but empty)
        with closing(sqlite3.connect(db)) as catalog:
            tables = catalog.execute("SELECT name FROM sqlite_master").fetchall()
        assert tables == [] and opened == []
    attach.join(60)
    assert len(opened) == 1
    con = opened[0]
    assert isinstance(con, duckdb.DuckDBPyConnection)
    assert con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE type = 'ducklake'"
    ).fetchone() == (1,)
    con.close()
    # an existing lake is attached without the lock: a holder does not block it
    with exclusive(lock_path(db, "create")), connect(db) as again:
        assert lake.is_lake_connection(again)


def test_two_connections_overlapping_writes_of_one_key_store_it_once(tmp_path: Path) -> None:
    """Two newsmon connections to a lake add the same key in overlapping transactions: the one
    that commits last conflicts, and run again (as every newsmon write function is) it finds the
    other's row instead of adding its own. (Two processes: the shards test below.)"""
    db = tmp_path / "w.ducklake"
    url = "https://example.org/feed.xml"
    with connect(db) as a, connect(db) as b:
        conflict = collide(a, b, url)
        assert is_conflict(conflict)
        assert a.execute("SELECT name FROM feeds WHERE url = ?", [url]).fetchall() == [("from-b",)]


def test_the_write_turn_is_what_stores_a_key_once_whatever_the_catalog(tmp_path: Path) -> None:
    """DuckLake's own rules (what a PostgreSQL catalog applies; SQLite's file lock is stricter)
    let two overlapping appends of one key both commit. The write turn that every newsmon
    transaction takes makes them conflict. (A DuckDB-file catalog, two cursors of one process.)"""
    con = duckdb.connect()
    extensions.load(con, "ducklake")
    con.execute(
        f"ATTACH 'ducklake:{tmp_path / 'meta.ducklake'}' AS lake (DATA_PATH '{tmp_path / 'data'}/')"
    )
    con.execute("USE lake")
    migrate(con)
    a, b = con.cursor(), con.cursor()
    for cursor in (a, b):
        cursor.execute("USE lake")
    url = "https://example.org/feed.xml"

    for cursor, name in ((a, "bare-a"), (b, "bare-b")):  # bare transactions: no turn
        cursor.execute("BEGIN TRANSACTION")
        bulk_insert(cursor, "feeds", [feed_row(url + "?bare", name)], key=("feed_id",))
    a.execute("COMMIT")
    b.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM feeds WHERE url = ?", [url + "?bare"]).fetchone() == (
        2,
    )

    conflict = collide(a, b, url)
    assert is_conflict(conflict)
    assert con.execute("SELECT name FROM feeds WHERE url = ?", [url]).fetchall() == [("from-b",)]
    con.close()


def test_a_commit_that_keeps_conflicting_gives_up_with_a_warehouse_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "COMMIT_ATTEMPTS", 5)
    monkeypatch.setattr(store, "COMMIT_WAIT_S", (0.001, 0.01))
    calls = []

    def always_conflicts() -> None:
        calls.append(1)
        raise duckdb.TransactionException("Failed to commit: database is locked")

    with pytest.raises(WarehouseError, match="always_conflicts: gave up after 5 commits"):
        retry_conflicts(always_conflicts)()
    assert len(calls) == 5

    def fails() -> None:
        calls.append(1)
        raise duckdb.TransactionException("Failed to commit: unsupported type")

    calls.clear()
    with pytest.raises(duckdb.TransactionException):
        retry_conflicts(fails)()
    assert len(calls) == 1  # not a conflict: not run again


def add_feeds(con: duckdb.DuckDBPyConnection, rows: list[FeedRow]) -> None:
    with transaction(con):
        bulk_insert(con, "feeds", rows, key=("feed_id",))


def test_checkpoint_merges_a_lakes_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    db = tmp_path / "w.ducklake"
    with connect(db) as con:
        for n in range(6):  # 6 commits of 20 rows: more than DuckLake inlines, 6 Parquet files
            rows = [feed_row(f"https://example.org/{n}/{i}.xml", f"f{n}.{i}") for i in range(20)]
            retry_conflicts(add_feeds)(con, rows)
        feeds = con.execute("SELECT * FROM feeds ORDER BY feed_id").fetchall()

    out = subprocess.run(
        [*NEWSMON, "checkpoint", "--db", str(db), "--keep-days", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = re.fullmatch(
        rf"Checkpointed {re.escape(str(db))}: data files in use (\d+) -> (\d+), snapshots "
        r"(\d+) -> (\d+) \(the last 0 day\(s\) kept\); (\d+) unused file\(s\) are deleted by a "
        r"checkpoint once a day old\.\n",
        out.stdout,
    )
    assert summary, out.stdout
    files_before, files_after, snapshots_before, snapshots_after, waiting = map(
        int, summary.groups()
    )
    assert files_after < files_before and waiting >= 6
    # every snapshot older than 0 days expired: what is left is the checkpoint's own
    assert snapshots_before > 6 and snapshots_after <= 2
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT * FROM feeds ORDER BY feed_id").fetchall() == feeds


def test_lake_ddl_drops_exactly_the_key_constraints() -> None:
    sql = """
        CREATE TABLE t (
            id    VARCHAR PRIMARY KEY,  -- the key
            url   VARCHAR NOT NULL UNIQUE,
            n     INTEGER NOT NULL DEFAULT 0,   -- a count
            PRIMARY KEY (id, url)
        );
    """
    assert lake.without_constraints(sql).split("\n") == [
        "",
        "        CREATE TABLE t (",
        "            id    VARCHAR,  -- the key",
        "            url   VARCHAR NOT NULL,",
        "            n     INTEGER NOT NULL DEFAULT 0 -- a count",
        "        );",
        "    ",
    ]


@pytest.mark.parametrize(
    ("line", "fix"),
    [
        ("    UNIQUE (url, title)", "after the column's type"),
        ("    CONSTRAINT feeds_pk PRIMARY KEY (id)", "after the column's type"),
        ("ALTER TABLE t ADD PRIMARY KEY (id);", "after the column's type"),
        ("    id VARCHAR primary key,", "PRIMARY KEY` or `UNIQUE"),
        ("    PRIMARY KEY (id),", "must be its last line"),
    ],
)
def test_lake_ddl_refuses_key_constraints_it_cannot_drop(line: str, fix: str) -> None:
    sql = f"CREATE TABLE t (\n    id VARCHAR NOT NULL,\n{line}\n    url VARCHAR\n);"
    with pytest.raises(ValueError, match="line 3 of a migration") as info:
        lake.without_constraints(sql)
    assert fix in str(info.value) and line.strip() in str(info.value)


# --- two ingest processes at once on one lake ------------------------------------------------

ARTICLES_PER_FEED = 4
SHARED = "/shared.html"  # linked from a feed of each shard


class Rendezvous:
    """Hold a request until a request of the other shard arrives (or ``timeout`` passes)."""

    def __init__(self, timeout: float) -> None:
        self.arrived = {1: threading.Event(), 2: threading.Event()}
        self.timeout = timeout

    def at(self, shard: int) -> None:
        self.arrived[shard].set()
        self.arrived[3 - shard].wait(self.timeout)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_two_shards_ingest_at_once_into_one_lake_and_every_article_lands_once(
    http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    feeds_by_shard = shard_feeds(http_server, per_shard=3)
    polls = Rendezvous(timeout=60)  # both runs poll at once: their commits overlap
    pages = Rendezvous(timeout=5)  # both shards fetch the shared page at once, if both do
    shared_reply = news_page("Shared article")
    names: dict[str, str] = {}
    for index, urls in feeds_by_shard.items():
        http_server.add(
            f"{SHARED}?utm_source={index}",
            shared_reply,
            content_type="text/html",
            before=lambda i=index: pages.at(i),
        )
        for j, url in enumerate(urls):
            links = []
            for k in range(ARTICLES_PER_FEED):
                own = f"/s{index}f{j}a{k}.html"
                title = f"Shard {index} feed {j} article {k}"
                http_server.add(own, news_page(title), content_type="text/html")
                links.append((title, http_server.url(own)))
            if j == 0:
                # one article, two links (utm_ tags are dropped from its canonical URL)
                links.append(("Shared article", http_server.url(f"{SHARED}?utm_source={index}")))
            http_server.add(
                "/" + url.rsplit("/", 1)[1],
                rss(links),
                content_type="application/rss+xml",
                before=lambda i=index: polls.at(i),
            )
            names[f"s{index}f{j}"] = url
    feeds = write_feeds_toml(tmp_path / "feeds.toml", names)
    db = tmp_path / "w.ducklake"
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),  # the session's server
        "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",
        "NEWSMON_HTTP_RETRIES": "0",
        # a feed held at the rendezvous must not time out first (the default read timeout is 10 s,
        # and one process can start polling well before the other on a busy machine)
        "NEWSMON_HTTP_TIMEOUT": str(2 * polls.timeout),
        "NEWSMON_HTTP_DEADLINE": str(2 * polls.timeout),
        "NEWSMON_WORKERS": "1",
    }
    runs = [
        subprocess.Popen(
            [
                *NEWSMON,
                "run",
                "--init",
                "--db",
                str(db),
                "--feeds",
                str(feeds),
                "--shard",
                f"{i}/2",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [run.communicate(timeout=240)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "Traceback" not in output

    # each shard polled its own feeds, every feed once
    for urls in feeds_by_shard.values():
        for url in urls:
            assert http_server.count("/" + url.rsplit("/", 1)[1]) == 1
    feed_count = sum(len(u) for u in feeds_by_shard.values())
    expected_articles = feed_count * ARTICLES_PER_FEED + 1 + len(baseline_records())

    with connect(db, read_only=True) as con:

        def one(sql: str) -> tuple[object, ...]:
            row = con.execute(sql).fetchone()
            assert row is not None
            return tuple(row)

        # the two runs were in progress at the same time (the feeds answered only then)
        assert one("SELECT count(*), max(started_at) < min(finished_at) FROM runs") == (2, True)
        assert (
            one(
                "SELECT count(*), count(DISTINCT article_id), count(DISTINCT canonical_url) "
                "FROM articles"
            )
            == (expected_articles,) * 3
        )
        assert one("SELECT count(*) FROM articles WHERE title = 'Shared article'") == (1,)
        assert (
            one("SELECT count(*), count(DISTINCT (feed_id, guid)) FROM feed_items")
            == (feed_count * ARTICLES_PER_FEED + 2,) * 2
        )
        assert one("SELECT count(*), count(DISTINCT feed_id) FROM feed_fetches") == (
            feed_count,
            feed_count,
        )
        # the search index took both writers' articles: its statistics count each once
        assert one(
            "SELECT (SELECT count(*) FROM fts_main_articles.docs), "
            "(SELECT num_docs FROM fts_main_articles.stats)"
        ) == (expected_articles, expected_articles)
        assert one("SELECT count(*) FROM articles WHERE story_id IS NULL") == (0,)
        assert one(
            "SELECT count(DISTINCT article_id) FROM relevant_articles "
            "WHERE title LIKE 'Shard _ feed _ article _'"
        ) == (feed_count * ARTICLES_PER_FEED,)

    # `newsmon sql` reads the union of what both processes wrote
    out = subprocess.run(
        [*NEWSMON, "sql", "--db", str(db), "--format", "csv",
         "SELECT count(*) AS n FROM articles WHERE title LIKE 'Shard 1%' "
         "UNION ALL SELECT count(*) FROM articles WHERE title LIKE 'Shard 2%'"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    per_shard = ARTICLES_PER_FEED * len(feeds_by_shard[1])
    assert out.stdout.split() == ["n", str(per_shard), str(per_shard)]
