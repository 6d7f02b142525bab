"""The DuckDB warehouse: migrations, idempotent batch loads, duplicates, the baseline set."""

from __future__ import annotations

import dataclasses
import importlib
from datetime import date
from pathlib import Path

import duckdb
import pytest

from newsmon.core.errors import WarehouseError, WarehouseLockedError
from newsmon.core.settings import DEFAULT_CONFIG_DIR
from newsmon.extractors.pipeline import filter_articles
from newsmon.extractors.topics import load_topics
from newsmon.warehouse import loads, polls
from newsmon.warehouse.baseline import baseline_articles, baseline_records, ensure_baseline
from newsmon.warehouse.migrations import MIGRATIONS, latest_version
from newsmon.warehouse.store import connect, duckdb_threads
from tests.helpers import record
from tests.paths import ROOT, SEEDS

TOPICS = load_topics(DEFAULT_CONFIG_DIR / "topics.toml")


def test_migrations_run_once_in_order_and_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    for _ in range(2):
        with connect(db) as con:
            versions = con.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(m.version,) for m in MIGRATIONS]
    assert latest_version() == len(MIGRATIONS)
    with connect(db, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {
        "article_embeddings",
        "labels",
        "schema_migrations",
        "feeds",
        "runs",
        "feed_fetches",
        "articles",
        "feed_items",
        "article_entities",
        "article_matches",
        "digests",  # migration 3
        "digest_items",
        "stories",  # migration 4
        "story_signatures",
        "subscriptions",  # migration 7
        "unsubscribes",
        "reads",  # migration 8
        "saved_searches",
    }


def test_loading_a_batch_twice_changes_nothing_but_keeps_first_seen(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    batch = filter_articles(
        [record(1, "NATO defence ministers met in Brussels."), record(2, "Football.")], TOPICS
    )
    with connect(db) as con:
        assert loads.load_articles(con, batch) == 2
        first = con.execute("SELECT article_id, first_seen_at FROM articles ORDER BY 1").fetchall()
        counts = con.execute(
            "SELECT (SELECT count(*) FROM article_entities), (SELECT count(*) FROM article_matches)"
        ).fetchone()
        assert loads.load_articles(con, batch + batch) == 2
        again = con.execute("SELECT article_id, first_seen_at FROM articles ORDER BY 1").fetchall()
        counts_again = con.execute(
            "SELECT (SELECT count(*) FROM article_entities), (SELECT count(*) FROM article_matches)"
        ).fetchone()
    assert first == again
    assert counts == counts_again
    assert counts is not None and counts[1] == 2  # one match row per article and topic


def test_same_content_under_another_url_is_marked_duplicate(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb") as con:
        loads.load_articles(con, [record(1, "same story")])
        loads.load_articles(con, [record(2, "same story"), record(3, "other story")])
        got = con.execute("SELECT article_id, duplicate_of FROM articles ORDER BY 1").fetchall()
    assert got == [("id1", None), ("id2", "id1"), ("id3", None)]


def test_failed_transient_pages_are_retry_candidates_until_max_attempts(tmp_path: Path) -> None:
    failed = {"extraction_status": "failed", "content_hash": None}
    with connect(tmp_path / "w.duckdb") as con:
        loads.load_articles(
            con,
            [
                record(1, "", **failed, extraction_reason="timeout"),
                record(2, "", **failed, extraction_reason="http_4xx"),
                record(3, "", **failed, extraction_reason="http_5xx", fetch_attempts=3),
                record(4, "fine"),
            ],
        )
        retry = loads.retry_candidates(con, max_attempts=3)
    assert [(c.article_id, c.attempts) for c in retry] == [("id1", 1)]


def test_a_version_1_warehouse_upgrades_in_place(tmp_path: Path) -> None:
    import duckdb

    from newsmon.warehouse.migrations import MIGRATIONS, applied_versions

    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    applied_versions(con)  # creates schema_migrations
    con.execute(MIGRATIONS[0].sql)
    con.execute("INSERT INTO schema_migrations VALUES (1, 'initial', now())")
    con.execute(
        "INSERT INTO articles (article_id, canonical_url, url, extraction_status, first_seen_at,"
        " updated_at) VALUES ('a', 'https://x.example/a', 'https://x.example/a', 'extracted',"
        " now(), now())"
    )
    con.close()
    with connect(db) as con:  # a writable open migrates
        assert applied_versions(con) == {m.version for m in MIGRATIONS}
        row = con.execute("SELECT article_id, detected_language FROM articles").fetchall()
    assert row == [("a", None)]


def test_read_only_open_of_a_missing_warehouse_says_how_to_create_it(tmp_path: Path) -> None:
    with (
        pytest.raises(WarehouseError, match="newsmon init"),
        connect(tmp_path / "none.duckdb", read_only=True),
    ):
        pass


def test_a_locked_warehouse_is_a_clear_error_after_waiting(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    db = tmp_path / "w.duckdb"
    with connect(db):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True);"
            " time.sleep(20)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        start = time.monotonic()
        with (
            pytest.raises(WarehouseLockedError, match="locked by another newsmon process"),
            connect(db, read_only=True, wait_s=0.5),
        ):
            pass
        assert time.monotonic() - start >= 0.5  # it waited before giving up
    finally:
        holder.kill()
        holder.wait()


# --- the baseline set ------------------------------------------------------------------------


def test_baseline_ships_the_seed_texts_unchanged() -> None:
    shipped = ROOT / "warehouse" / "baseline"
    names = sorted(p.name for p in shipped.glob("*.txt"))
    assert names == sorted(p.name for p in SEEDS.glob("0*.txt"))
    for name in names:
        assert (shipped / name).read_bytes() == (SEEDS / name).read_bytes()


def test_baseline_manifest_and_cleaning() -> None:
    articles = baseline_articles()
    assert [(a.publisher, a.published, a.language) for a in articles] == [
        ("Press TV", date(2016, 10, 27), "en"),
        ("The Defense Post", date(2023, 1, 9), "en"),
        ("MENAFN", date(2025, 10, 16), "en"),
    ]
    chrome = [
        "(Photo by AFP)",
        "Loading ...",
        "Related Articles",
        "Back to top button",
        "Getty Images",
        "Legal Disclaimer",
        "MENAFN16102025",
        "12:17 GMT",
        "(MENAFN)",
    ]
    for a in articles:
        assert not [c for c in chrome if c in a.text], a.file
        assert a.title not in a.text  # the headline is metadata, not body
    # the article itself is intact: first and last sentences of each
    assert articles[0].text.startswith("NATO Secretary General Jens Stoltenberg has downplayed")
    assert articles[0].text.endswith("received a cool response from NATO.")
    assert 'without any kind of overlapping or duplication with NATO."\n' in articles[0].text
    assert articles[1].text.startswith("NATO and the EU are seeking to ramp up cooperation")
    assert articles[1].text.endswith("the joint declaration says.")
    assert articles[2].text.startswith("On Wednesday, EU foreign policy chief Kaja Kallas")
    assert articles[2].text.endswith("It's up to the member states.\"")


def test_every_baseline_article_is_relevant_under_the_shipped_filters() -> None:
    for rec in filter_articles(baseline_records(), TOPICS):
        (match,) = [m for m in rec.matches if m.topic == "eu_nato_defence"]
        assert match.relevant, (rec.title, match.score, match.explanation)
        # the explanation names NATO and the EU, each found in the title or the lead
        evidence = {e["name"]: e for e in match.explanation["evidence"]}
        for entity in ("nato", "eu"):
            assert evidence[entity]["in_title"] or evidence[entity]["lead_count"], entity
        assert match.explanation["required_met"] is True
        assert rec.detected_language == "en"


def test_baseline_loads_once_into_a_new_warehouse(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert ensure_baseline(db, TOPICS) == 3
    assert ensure_baseline(db, TOPICS) == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = con.execute(
            "SELECT a.site_name, a.extraction_status, a.feed_id, m.relevant FROM articles a "
            "JOIN article_matches m USING (article_id) WHERE a.is_baseline ORDER BY a.published_at"
        ).fetchall()
    finally:
        con.close()
    assert got == [
        ("Press TV", "baseline", None, True),
        ("The Defense Post", "baseline", None, True),
        ("MENAFN", "baseline", None, True),
    ]


# --- public surface --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "newsmon.extractors.articles",
        "newsmon.extractors.pipeline",
        "newsmon.extractors.reasons",
        "newsmon.core.settings",
        "newsmon.core.errors",
        "newsmon.warehouse.baseline",
        "newsmon.warehouse.loads",
        "newsmon.warehouse.migrations",
        "newsmon.warehouse.store",
        "newsmon.warehouse.status",
    ],
)
def test_public_names_are_exported(module: str) -> None:
    """Every public function and class defined in the module is in __all__, and nothing else."""
    mod = importlib.import_module(module)
    defined = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == module
        and (isinstance(value, type) or callable(value))
    }
    assert defined <= set(mod.__all__), sorted(defined - set(mod.__all__))
    assert all(hasattr(mod, name) for name in mod.__all__)


def test_a_key_list_parameter_matches_exactly_the_keys_given() -> None:
    from newsmon.warehouse.store import keys_param

    awkward = ["a'b", 'c"d', "é,x", "[1]", "", "id\\n"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (k VARCHAR, n BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(k, i) for i, k in enumerate([*awkward, "z"])])
    query = """SELECT k FROM t WHERE list_contains(from_json(?, '["VARCHAR"]'), k) ORDER BY n"""
    assert [r[0] for r in con.execute(query, [keys_param(awkward)]).fetchall()] == awkward
    assert con.execute(query, [keys_param([])]).fetchall() == []
    numbers = """SELECT n FROM t WHERE list_contains(from_json(?, '["BIGINT"]'), n) ORDER BY n"""
    assert con.execute(numbers, [keys_param([6, 0])]).fetchall() == [(0,), (6,)]


def test_registering_feeds_writes_new_and_changed_entries_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    from newsmon.core.settings import FeedConfig

    a = FeedConfig("A", "https://a.example/feed.xml", ("nato",))
    b = FeedConfig("B", "https://b.example/feed.xml", language="de")
    with connect(tmp_path / "w.duckdb") as con:
        polls.register_feeds(con, [a, b])
        con.execute("UPDATE feeds SET etag = 'e1' WHERE name = 'A'")  # as a poll would
        added = dict(con.execute("SELECT name, added_at FROM feeds").fetchall())
        renamed = dataclasses.replace(b, name="B (Berlin)", tags=("eu",), poll_interval_minutes=30)
        targets = polls.register_feeds(con, [a, renamed])
        rows = con.execute(
            "SELECT name, tags, language, poll_interval_minutes, etag, added_at FROM feeds "
            "ORDER BY name"
        ).fetchall()
    assert rows == [
        ("A", ["nato"], None, None, "e1", added["A"]),
        ("B (Berlin)", ["eu"], "de", 30, None, added["B"]),
    ]
    assert [(t.url, t.etag, t.poll_interval_minutes) for t in targets] == [
        (a.url, "e1", None),
        (b.url, None, 30),
    ]


def test_duckdb_threads_applies_to_the_block_and_is_restored_after_it(tmp_path: Path) -> None:
    def threads(con: duckdb.DuckDBPyConnection) -> int:
        row = con.execute("SELECT current_setting('threads')").fetchone()
        assert row is not None
        return int(row[0])

    with connect(tmp_path / "w.duckdb") as con:
        con.execute("SET threads = 3")
        with duckdb_threads(con, 1):
            assert threads(con) == 1
        assert threads(con) == 3
        with pytest.raises(RuntimeError), duckdb_threads(con, 2):
            raise RuntimeError("a failed load")
        assert threads(con) == 3


def test_an_immediate_ceiling_makes_parked_feeds_due_but_keeps_their_own_word(
    tmp_path: Path,
) -> None:
    """Issue 21: feeds scheduled for hours before an immediate subscription existed are polled
    within its interval; one that asked for a TTL, or is failing, keeps its time."""
    from datetime import UTC, datetime, timedelta

    from newsmon.core.settings import FeedConfig
    from newsmon.warehouse.polls import due_targets

    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    feeds = [FeedConfig(n, f"https://{n}.example/feed.xml") for n in ("rate", "ttl", "failing")]
    with connect(tmp_path / "w.duckdb") as con:
        targets = polls.register_feeds(con, feeds)
        for name, why, streak in (
            ("rate", "rate", 0),
            ("ttl", "ttl", 0),
            ("failing", "backoff", 2),
        ):
            con.execute(
                "UPDATE feeds SET next_poll_at = ?, last_polled_at = ?, schedule_reason = ?, "
                "error_streak = ? WHERE name = ?",
                [now + timedelta(hours=5), now - timedelta(minutes=3), why, streak, name],
            )
        assert due_targets(con, targets, now) == []  # no ceiling: as scheduled
        due = due_targets(con, targets, now, ceiling=timedelta(minutes=2))
        assert [t.url for t in due] == ["https://rate.example/feed.xml"]
        # serve runs every 2 minutes: a feed due 20 s after this run starts is due now
        con.execute(
            "UPDATE feeds SET next_poll_at = ? WHERE name = 'ttl'", [now + timedelta(seconds=20)]
        )
        due = due_targets(con, targets, now, ceiling=timedelta(minutes=2))
        assert len(due) == 2
