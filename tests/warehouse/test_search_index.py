"""The search index is kept current by the loads: the same scores as a full rebuild.

Real news items (the labelled corpus: titles, summaries, texts in several languages) go into a
warehouse in batches through ``loads.load_articles``, the ingest's own write path, some of them
written twice with new text (a retried page). The index those loads maintained must rank and
score every query exactly as ``refresh_index`` does when it rebuilds from every article.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from newsmon.extractors.pipeline import ArticleRecord
from newsmon.warehouse import loads
from newsmon.warehouse.search import INDEX_SCHEMA, has_index, load_fts, refresh_index
from newsmon.warehouse.store import connect
from tests.paths import CORPUS

QUERIES = [
    "nato",
    "drone wall",
    "defence spending",
    "Ukraine ceasefire talks",
    "eastern flank",
    "l'OTAN",
    "Bundeswehr",
    "european defence fund",
    "article 5",
    "zebra",  # only in the rewritten texts
]


def _records() -> list[ArticleRecord]:
    items = [
        json.loads(line)
        for line in (CORPUS / "labelled" / "items.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [
        ArticleRecord(
            article_id=item["id"],
            canonical_url=item["url"] + f"#{i}",  # a few items share a link
            url=item["url"],
            final_url=item["url"],
            feed_id=None,
            guid=item["id"],
            title=item.get("title"),
            author=None,
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
            fetched_at=datetime(2026, 11, 2, tzinfo=UTC),
            language=item.get("lang"),
            site_name=item.get("publisher"),
            description=None,
            summary=item["text"][:300] if i % 3 else None,
            text=item["text"] if i % 4 else None,
            extraction_status="extracted",
            extraction_reason=None,
            extraction_error=None,
            fetch_attempts=1,
            http_status=200,
            content_hash=f"h{i}",
        )
        for i, item in enumerate(items)
    ]


def _scores(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, float]]:
    load_fts(con)
    return {
        q: dict(
            con.execute(
                f"SELECT article_id, {INDEX_SCHEMA}.match_bm25(article_id, ?) AS s "
                "FROM articles WHERE s IS NOT NULL",
                [q],
            ).fetchall()
        )
        for q in QUERIES
    }


def _dictionary(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute(f"SELECT term, df FROM {INDEX_SCHEMA}.dict WHERE df > 0").fetchall())


def test_loads_keep_the_index_equal_to_a_full_rebuild(tmp_path: Path) -> None:
    records = _records()
    assert len(records) >= 150
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        loads.load_articles(con, records[:60])
        assert not has_index(con)  # loads before the first build leave it to refresh_index
        refresh_index(con)
        for start in range(60, len(records), 40):  # the ingest's batches
            loads.load_articles(con, records[start : start + 40])
        # retried pages: new text for some, text lost for one, text found for another
        rewritten = [
            dataclasses.replace(r, text=f"{r.text or ''} zebra crossing near the border")
            for r in records[10:70:7]
        ]
        lost = dataclasses.replace(records[5], text=None, summary=None)
        found = dataclasses.replace(records[4], text="NATO allies agree on a drone wall")
        loads.load_articles(con, [*rewritten, lost, found])
        kept = _scores(con)
        kept_dict = _dictionary(con)
        kept_stats = con.execute(f"SELECT * FROM {INDEX_SCHEMA}.stats").fetchall()
        docs = con.execute(f"SELECT count(*), count(DISTINCT name) FROM {INDEX_SCHEMA}.docs")
        assert docs.fetchone() == (len(records), len(records))

    rebuilt_db = tmp_path / "rebuilt.duckdb"
    shutil.copy(db, rebuilt_db)
    with connect(rebuilt_db) as con:
        refresh_index(con)
        rebuilt = _scores(con)
        assert _dictionary(con) == kept_dict
        assert con.execute(f"SELECT * FROM {INDEX_SCHEMA}.stats").fetchall() == kept_stats

    assert len(rebuilt["zebra"]) == len(rewritten)
    assert sum(len(hits) for hits in rebuilt.values()) > 100
    for query in QUERIES:
        assert kept[query].keys() == rebuilt[query].keys(), query
        for article_id, score in rebuilt[query].items():
            assert kept[query][article_id] == pytest.approx(score, rel=1e-9), (query, article_id)


def test_a_rescore_leaves_the_index_alone_and_a_new_warehouse_gets_one(tmp_path: Path) -> None:
    from newsmon.flows.derived import refresh_derived

    db = tmp_path / "w.duckdb"
    records = _records()[:30]
    with connect(db) as con:
        loads.load_articles(con, records)
    refresh_derived(db, 7)  # no index yet: built from every article
    with connect(db) as con:
        assert has_index(con)
        docs = con.execute(f"SELECT count(*) FROM {INDEX_SCHEMA}.docs").fetchone()
        assert docs == (len(records),)
        con.execute(f"INSERT INTO {INDEX_SCHEMA}.stopwords VALUES ('marker')")
    refresh_derived(db, 7, all_stories=True)  # a rescore: no rebuild (it would drop the marker)
    with connect(db, read_only=True) as con:
        marker = con.execute(f"SELECT count(*) FROM {INDEX_SCHEMA}.stopwords WHERE sw = 'marker'")
        assert marker.fetchone() == (1,)
